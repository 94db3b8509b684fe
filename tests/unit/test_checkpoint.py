"""Checkpoints: plain data, a round trip to the same logits, other files refused safely."""

import os
import pickle

import pytest
import torch

from phaselib.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from phaselib.models import build_model
from phaselib.train import History, TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("kind, kw", [("transformer", dict(n_head=2)),
                                      ("phase", dict(n_head=2, window=3, n_slots=2))])
def test_checkpoint_round_trip_gives_the_same_logits(tmp_path, kind, kw):
    torch.manual_seed(1)
    model = build_model(kind, 17, block_size=19, n_layer=2, n_embd=14, **kw)
    with torch.no_grad():  # move off the initialisation so the test sees trained weights
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    cfg = TrainConfig(steps=3, lr=1e-3)
    hist = History(step=[0, 1], loss=[2.0, 1.5])
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, cfg, vocab=list("abc"), history=hist,
                    extra={"val_loss": 1.25}, resume={"step": 2})
    raw = torch.load(path, weights_only=True)  # plain data only
    assert raw["kind"] == kind and raw["format"] == "phaselib-lm-checkpoint-v1"
    ck = load_checkpoint(path)
    idx = torch.randint(17, (2, 19))
    torch.testing.assert_close(ck.model(idx)[0], model.eval()(idx)[0], rtol=0, atol=0)
    assert ck.model.head.weight is ck.model.wte.weight
    assert ck.train_config == TrainConfig(steps=3, lr=1e-3)
    assert ck.history == History(step=[0, 1], loss=[2.0, 1.5])
    assert ck.vocab == ["a", "b", "c"] and ck.extra == {"val_loss": 1.25}
    assert ck.resume == {"step": 2}


def test_save_checkpoint_is_atomic_and_keeps_the_old_file_on_failure(tmp_path):
    model = build_model("transformer", 5, block_size=4, n_layer=1, n_head=1, n_embd=4)
    path = tmp_path / "m.pt"
    save_checkpoint(path, model)
    before = path.read_bytes()
    with pytest.raises(Exception):  # an object torch.save cannot write
        save_checkpoint(path, model, extra={"bad": lambda: 0})
    assert path.read_bytes() == before and load_checkpoint(path).extra == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]  # no temporary left


def test_save_checkpoint_removes_what_a_killed_save_left(tmp_path):
    model = build_model("transformer", 5, block_size=4, n_layer=1, n_head=1, n_embd=4)
    left = tmp_path / ".m.pt.abc123.tmp"  # the name provenance's atomic writer uses
    left.write_bytes(b"half a checkpoint")
    other = tmp_path / ".n.pt.abc123.tmp"  # another target's: kept
    other.write_bytes(b"x")
    save_checkpoint(tmp_path / "m.pt", model)
    assert not left.exists() and other.exists()


class NotAModel:
    """A class torch's weights_only loader refuses to build."""


@pytest.mark.parametrize("write, why", [
    (lambda p: torch.save({"weights": torch.zeros(2)}, p), "no format field"),
    (lambda p: torch.save({"format": FORMAT, "kind": "rnn"}, p), "unknown model kind"),
    (lambda p: p.write_bytes(pickle.dumps(NotAModel())), "plain tensors"),
    (lambda p: p.write_bytes(os.urandom(4096)), "plain tensors"),
    (lambda p: p.write_bytes(b""), "plain tensors"),
], ids=["other-dict", "other-kind", "pickle", "random-bytes", "empty"])
def test_load_checkpoint_refuses_other_files_without_unsafe_advice(tmp_path, write, why):
    write(tmp_path / "x.pt")
    with pytest.raises(ValueError, match="is not a phaselib language-model checkpoint") as e:
        load_checkpoint(tmp_path / "x.pt")
    assert why in str(e.value) and "weights_only" not in str(e.value)


def test_load_checkpoint_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="existing checkpoint file"):
        load_checkpoint(tmp_path / "missing.pt")
