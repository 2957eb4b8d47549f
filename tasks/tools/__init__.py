"""What uses models without training them: semantic search, attention maps,
feature extraction."""
