"""Knowledge distillation: DistilBERT and TinyBERT students trained from a teacher."""
