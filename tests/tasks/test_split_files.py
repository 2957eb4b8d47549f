"""tasks.data.text_files.split_file: one rule for CSV/TSV/JSONL, CoNLL and SQuAD folders."""

import pytest

from tasks.data.text_files import split_file


def folder_with(tmp_path, *names):
    for name in names:
        (tmp_path / name).write_text("")
    return tmp_path


def test_the_split_file_is_chosen_over_longer_names(tmp_path):
    glue = folder_with(tmp_path,
                       "train.tsv", "validation.tsv", "validation_matched.tsv",
                       "validation_mismatched.tsv")
    assert split_file(str(glue), "validation").endswith("/validation.tsv")
    assert split_file(str(glue), "train").endswith("/train.tsv")


def test_squad_and_conll_names(tmp_path):
    (tmp_path / "squad").mkdir()
    (tmp_path / "conll").mkdir()
    squad = folder_with(tmp_path / "squad", "train-v1.1.json", "dev-v1.1.json")
    assert split_file(str(squad), "validation", extensions=(".json",)).endswith("dev-v1.1.json")
    conll = folder_with(tmp_path / "conll", "eng.train", "eng.testa", "eng.testb")
    assert split_file(str(conll), "validation", extensions=None).endswith("eng.testa")
    assert split_file(str(conll), "test", extensions=None).endswith("eng.testb")


def test_two_candidates_or_none_are_errors_naming_them(tmp_path):
    folder_with(tmp_path, "train.csv", "train.tsv")
    with pytest.raises(ValueError, match=r"Several files for split 'train'.*train\.csv"):
        split_file(str(tmp_path), "train")
    with pytest.raises(FileNotFoundError, match="No file for split 'test'"):
        split_file(str(tmp_path), "test")
    assert split_file(str(tmp_path / "train.csv"), "validation").endswith("train.csv")
