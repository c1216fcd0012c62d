from rag.v1 import gateway_pb2, types_pb2
from services.gateway.cache import AnswerCache, cache_key

FUSION = types_pb2.FusionParams()


def key(**changes):
    args = {
        "tenant": "acme",
        "principals": ["alice"],
        "question": "Where is Etna?",
        "top_k": 8,
        "fusion": FUSION,
        "watermark": 10,
        "model_id": "m@sha256:1",
    } | changes
    return cache_key(**args)


def test_key_separates_everything_that_decides_an_answer():
    base = key()
    assert key(question="  where IS   etna? ") == base
    assert key(principals=["alice", "alice"]) == base
    for change in [
        {"tenant": "globex"},
        {"principals": ["bob"]},
        {"principals": []},
        {"question": "Where is Rome?"},
        {"top_k": 9},
        {"fusion": types_pb2.FusionParams(method="dense")},
        {"watermark": 11},
        {"model_id": "m@sha256:2"},
    ]:
        assert key(**change) != base, change


def test_principal_scopes_never_collide():
    """One principal holding a separator is another scope than two principals."""
    assert key(principals=["x,y"]) != key(principals=["x", "y"])
    assert key(principals=["x\x1fy"]) != key(principals=["x", "y"])
    assert key(principals=["a"], question="b") != key(principals=["a\x1fb"], question="")


def test_ttl_and_size():
    now = [0.0]
    cache = AnswerCache(size=2, ttl_seconds=10, clock=lambda: now[0])
    cache.put("a", gateway_pb2.AskFinal(answer="A"))
    cache.put("b", gateway_pb2.AskFinal(answer="B"))
    assert cache.get("a").answer == "A"
    cache.put("c", gateway_pb2.AskFinal(answer="C"))  # evicts the least recently used: b
    assert cache.get("b") is None and cache.get("a") is not None
    now[0] = 11
    assert cache.get("a") is None and cache.get("c") is None
    off = AnswerCache(size=0, ttl_seconds=10)
    off.put("a", gateway_pb2.AskFinal(answer="A"))
    assert off.get("a") is None
