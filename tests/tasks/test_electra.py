"""ELECTRA pretraining (--task=pretraining --objective=electra): the generator
shares the discriminator's embeddings, the sample carries no gradient, the loss
is the paper's; the discriminator learns to find replaced tokens in the story
corpus, fine-tunes better than from scratch, and an interrupted run resumes
exactly."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from kerasbert.text import Preprocessor, WordPieceTokenizer, build_wordpiece_vocabulary
from tasks import electra
from tasks.base import TaskConfig
from tasks.pretraining import PretrainingTask
from tasks.training import runner
from tests.tasks import synthetic
from tests.tasks.interruption import interrupted_copy

ELECTRA = {"objective": "electra", "max_predictions": 5}


@pytest.fixture(scope="module")
def vocabulary(tmp_path_factory):
    """A WordPiece vocabulary learned from the embedded story corpus."""
    path = str(tmp_path_factory.mktemp("vocab") / "vocab.txt")
    build_wordpiece_vocabulary(PretrainingTask(TaskConfig()).training_texts(), 200,
                               lower_case=True, output_file=path)
    return path


@pytest.fixture(scope="module")
def preprocessor(vocabulary):
    return Preprocessor(WordPieceTokenizer(vocabulary, lower_case=True), sequence_length=32)


def electra_task(**options):
    return PretrainingTask(TaskConfig(sequence_length=32, options={**ELECTRA, **options}))


@pytest.fixture(scope="module")
def tiny(preprocessor):
    """(task, model, two validation batches) on electra_test_tiny, generator half
    as wide."""
    keras.utils.set_random_seed(0)
    task = electra_task(generator_size=0.5)
    model = task.build_model(zoo.build("electra_test_tiny",
                                       vocab_size=preprocessor.vocabulary.size))
    batches = list(task.build_dataset("validation", preprocessor, 16, training=False).take(2))
    return task, model, batches


def test_corruption_and_labels_follow_the_real_slots():
    ids = np.array([[2, 10, 11, 12, 3, 0]], np.int32)
    positions = np.array([[2, 3, 0]], np.int32)  # the last slot is padding (position 0)
    sampled = np.array([[20, 12, 99]], np.int32)
    masked_lm_ids = np.array([[11, 12, 0]], np.int32)
    np.testing.assert_array_equal(electra.corrupt(ids, positions, sampled),
                                  [[2, 10, 20, 12, 3, 0]])
    # Position 3's sample is the original token: not a replacement.
    np.testing.assert_array_equal(electra.replaced_labels(positions, sampled, masked_lm_ids, 6),
                                  [[0, 0, 1, 0, 0, 0]])


def test_generator_shares_the_tables_and_owns_only_its_encoder(tiny):
    _, model, _ = tiny
    backbone = model.discriminator.backbone
    assert isinstance(backbone, zoo.ElectraBackbone)
    assert model.discriminator.rtd_head == {"activation": backbone.activation}
    shared = backbone.get_layer("embeddings").weights
    generator = {id(v) for v in model.generator.trainable_variables}
    assert generator.isdisjoint(id(v) for v in model.discriminator.trainable_variables)
    assert generator.isdisjoint(id(v) for v in shared)
    # Each variable once: what the optimizer and the checkpoints see.
    assert len({id(v) for v in model.trainable_variables}) == len(model.trainable_variables) \
        == len(generator) + len(model.discriminator.trainable_variables)
    # electra_test_tiny: H16, 2 heads, feed-forward 32 -> a generator of 8, 1, 16
    # reading the 8-wide tables directly (no projection needed).
    transformer = model.generator.get_layer("generator_transformer")
    assert (transformer.num_layers, transformer.block_kwargs["num_heads"],
            transformer.block_kwargs["intermediate_size"]) == (2, 1, 16)
    assert model.generator.get_layer("generator_embeddings").projection is None
    assert model.generator.get_layer("generator_mlm_head").token_embedding \
        is backbone.token_embedding


def test_a_narrower_generator_projects_the_shared_tables_with_its_own_projection(
        tiny, preprocessor):
    # The default size, a quarter: 4 wide, narrower than the 8-wide tables.
    _, _, batches = tiny
    model = electra_task().build_model(zoo.build("electra_test_tiny",
                                                 vocab_size=preprocessor.vocabulary.size))
    projection = model.generator.get_layer("generator_embeddings").projection
    assert tuple(projection.kernel.shape) == (8, 4)
    assert any(v is projection.kernel for v in model.generator.trainable_variables)
    assert not any(v is projection.kernel for v in model.discriminator.weights)
    features, labels, weights = batches[0]
    with tf.GradientTape() as tape:
        loss = model.compute_loss(features, labels, model(features), weights)
    assert np.isfinite(float(loss))
    assert np.abs(tape.gradient(loss, projection.kernel)).max() > 0


def test_loss_is_generator_mlm_plus_50_discriminator_and_samples_carry_no_gradient(tiny):
    _, model, batches = tiny
    features, labels, weights = batches[0]
    with tf.GradientTape(persistent=True) as tape:
        outputs = model(features)
        loss = model.compute_loss(features, labels, outputs, weights)
        sums = electra.objective_sums(features, labels["mlm_logits"], weights["mlm_logits"],
                                      outputs)
        rtd_loss = sums["rtd_loss"] / sums["tokens"]

    # The same loss from NumPy: cross-entropy over the real masked tokens and
    # binary cross-entropy over every real token of the corrupted input.
    logits = np.asarray(outputs["mlm_logits"], np.float64)
    ids, slot_weights = labels["mlm_logits"].numpy(), weights["mlm_logits"].numpy()
    log_softmax = logits - logits.max(-1, keepdims=True)
    log_softmax -= np.log(np.exp(log_softmax).sum(-1, keepdims=True))
    mlm = -(np.take_along_axis(log_softmax, ids[..., None], -1)[..., 0] * slot_weights).sum() \
        / slot_weights.sum()
    positions, sampled = features["masked_lm_positions"].numpy(), outputs["sampled_ids"].numpy()
    replaced = np.zeros(features["input_word_ids"].shape)
    for row, column in zip(*np.nonzero(positions)):
        replaced[row, positions[row, column]] = sampled[row, column] != ids[row, column]
    assert replaced.sum() > 0
    z, real = np.asarray(outputs["rtd_logits"], np.float64), features["input_mask"].numpy()
    bce = (np.maximum(z, 0) - z * replaced + np.log1p(np.exp(-np.abs(z))))
    rtd = (bce * real).sum() / real.sum()
    np.testing.assert_allclose(float(loss), mlm + 50 * rtd, rtol=1e-5)

    # The discriminator's loss reaches no generator weight (a sample is a
    # discrete choice), but both losses train the shared embedding tables.
    generator_gradients = tape.gradient(rtd_loss, model.generator.trainable_variables)
    assert all(gradient is None for gradient in generator_gradients)
    table = model.discriminator.backbone.token_embedding.embeddings
    for term in (sums["mlm_loss"], rtd_loss):
        assert np.abs(tf.convert_to_tensor(tape.gradient(term, table))).max() > 0


def test_evaluation_is_repeatable_and_leaves_the_training_stream(tiny):
    task, model, batches = tiny
    state = model.sampler.state.numpy().copy()
    first = electra.evaluate(model, batches)
    assert electra.evaluate(model, batches) == first
    np.testing.assert_array_equal(model.sampler.state.numpy(), state)
    assert set(first) == {"mlm_accuracy", "perplexity", "rtd_accuracy", "rtd_baseline",
                          "rtd_loss", "replaced_recall", "replaced_precision"}
    assert 0.8 < first["rtd_baseline"] < 0.95  # ~15% masked, most of them replaced
    assert task.primary_metric == "rtd_accuracy"


def test_refusals(preprocessor):
    size = preprocessor.vocabulary.size
    with pytest.raises(ValueError, match="pretrains an ELECTRA discriminator"):
        electra_task().build_model(zoo.build("bert_test_tiny", vocab_size=size))
    with pytest.raises(ValueError, match="without a sentence task"):
        electra_task(sentence_task="nsp").build_model(zoo.build("electra_test_tiny",
                                                                vocab_size=size))
    with pytest.raises(ValueError, match="share them"):  # 128-wide tables vs 8
        electra_task(generator="electra_small_generator").build_model(
            zoo.build("electra_test_tiny", vocab_size=size))
    with pytest.raises(ValueError, match="is a bert preset"):
        electra_task(generator="bert_test_tiny").build_model(
            zoo.build("electra_test_tiny", vocab_size=size))


@pytest.mark.heavy
def test_discriminator_finds_replaced_tokens_resumes_and_fine_tunes_better_than_scratch(
        tmp_path, vocabulary):
    """The discriminator (2 layers, 64 wide, tables 32 wide; generator half as
    wide) pretrains for 300 steps on the embedded story corpus. Held out, it
    tells replaced tokens from originals far better than calling every token
    original. The same run restarted from its step-200 checkpoint ends at
    step 300 with exactly the same weights. Then the discriminator and the
    same random initialisation without pretraining fine-tune alike on
    story_corruption (was one word of a sentence pair replaced? 300 unseen
    pairs, chance 50%, standard deviation 2.9%): only the pretrained one
    learns it in 100 steps. Measured here: replaced-token accuracy 0.985
    against 0.900 for all-original (recall 0.85, precision 1.0); fine-tuned
    0.76, from scratch 0.46 (still at the majority class).
    """
    keras.utils.set_random_seed(0)
    vocab_size = sum(1 for _ in open(vocabulary))
    initial = zoo.build("electra_test_tiny", vocab_size=vocab_size, hidden_size=64,
                        num_heads=2, intermediate_size=128, embedding_size=32)
    init = tmp_path / "init"
    os.makedirs(init)
    initial.save(init / "model.keras")
    zoo.save_tokenizer(WordPieceTokenizer(vocabulary, lower_case=True), str(init))

    common = dict(sequence_length=32, batch_size=32, eval_batch_size=128)

    def pretrain(folder):
        return runner.run(runner.RunSettings(
            task="pretraining", model=str(init), model_dir=str(tmp_path / folder),
            train_steps=300, steps_per_loop=100, eval_every_loops=3, learning_rate=1e-3,
            options={**ELECTRA, "generator_size": 0.5}, **common))

    whole = pretrain("pretrained")
    pretrained = whole["final"]

    # Interrupted after two loops: the checkpoint holds both networks, the
    # optimizer and the random streams (dropout's and the sampler's), so the
    # restarted run samples and trains exactly as the uninterrupted one.
    interrupted_copy(tmp_path / "pretrained", tmp_path / "crashed", step=200)
    resumed = pretrain("crashed")
    assert whole["step"] == resumed["step"] == 300
    assert resumed["final"] == pretrained
    ends = [keras.saving.load_model(tmp_path / folder / "model.keras").get_weights()
            for folder in ("pretrained", "crashed")]
    for a, b in zip(*ends, strict=True):
        np.testing.assert_array_equal(a, b)

    data = synthetic.story_corruption(tmp_path / "data")
    fine_tuned = {}
    for name, start in (("pretrained", tmp_path / "pretrained"), ("scratch", init)):
        fine_tuned[name] = runner.run(runner.RunSettings(
            task="classification", init_checkpoint=str(start), data=str(data),
            text_fields=("text_a", "text_b"), model_dir=str(tmp_path / f"fine_tuned_{name}"),
            train_steps=100, steps_per_loop=100, learning_rate=1e-3, **common))["final"]

    print(f"held-out replaced-token accuracy {pretrained['rtd_accuracy']:.3f}, all-original "
          f"baseline {pretrained['rtd_baseline']:.3f} (recall "
          f"{pretrained['replaced_recall']:.3f}, precision "
          f"{pretrained['replaced_precision']:.3f}); story_corruption accuracy: pretrained "
          f"{fine_tuned['pretrained']['accuracy']:.3f}, from scratch "
          f"{fine_tuned['scratch']['accuracy']:.3f}")
    # ~4,400 held-out tokens: 0.05 is over ten standard deviations of the baseline.
    assert pretrained["rtd_accuracy"] > pretrained["rtd_baseline"] + 0.05, pretrained
    assert fine_tuned["pretrained"]["accuracy"] > fine_tuned["scratch"]["accuracy"] + 0.15, \
        fine_tuned
    assert fine_tuned["pretrained"]["accuracy"] > 0.65, fine_tuned

    # The run saved the discriminator as an ordinary zoo model with its head,
    # which Hugging Face reads as an ElectraForPreTraining.
    loaded = zoo.load(str(tmp_path / "pretrained"), with_head=True)
    assert isinstance(loaded.backbone, zoo.ElectraBackbone) and loaded.rtd_head
    zoo.save_hf(loaded, str(tmp_path / "hf"))
    assert '"ElectraForPreTraining"' in (tmp_path / "hf" / "config.json").read_text()
