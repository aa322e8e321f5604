"""The neighbour table: validation, persistence across restarts, concurrency."""

from __future__ import annotations

import threading

import pytest

from peerkit.errors import AlreadyExists, NotFound
from peerkit.peers import PeerTable

FRIENDS = [("peer2", "http://127.0.0.1:5002", "127.0.0.1:50052")]


def test_friends_from_config_then_runtime_changes_survive_restart(tmp_path):
    table = PeerTable(tmp_path, self_name="peer1")
    table.load(FRIENDS)
    table.add("peer3", "http://127.0.0.1:5003", "127.0.0.1:50053")
    table.remove("peer2")

    again = PeerTable(tmp_path, self_name="peer1")
    again.load(FRIENDS)  # the config still lists peer2: the operator's removal wins
    assert [p.name for p in again.all()] == ["peer3"]
    assert again.get("peer3").rest == "http://127.0.0.1:5003"

    again.add("peer2", *FRIENDS[0][1:])  # re-adding by hand undoes the removal
    third = PeerTable(tmp_path, self_name="peer1")
    third.load(FRIENDS)
    assert sorted(p.name for p in third.all()) == ["peer2", "peer3"]


def test_learned_peers_do_not_resurrect_removed_ones(tmp_path):
    table = PeerTable(tmp_path, self_name="me")
    table.add("x", "http://127.0.0.1:1", "127.0.0.1:2")
    table.remove("x")
    with pytest.raises(AlreadyExists):
        table.add("x", "http://127.0.0.1:1", "127.0.0.1:2", learned=True)


@pytest.mark.parametrize(
    ("name", "rest", "grpc"),
    [
        ("", "http://h:1", "h:2"),
        ("a b", "http://h:1", "h:2"),
        ("../x", "http://h:1", "h:2"),
        ("ok", "h:1", "h:2"),
        ("ok", "http://h", "h:2"),
        ("ok", "http://h:1/path", "h:2"),
        ("ok", "http://h:1", "h"),
        ("ok", "http://h:1", "h:99999"),
    ],
)
def test_bad_input_is_refused(tmp_path, name, rest, grpc):
    table = PeerTable(tmp_path, self_name="me")
    with pytest.raises(ValueError):
        table.add(name, rest, grpc)
    assert len(table) == 0


def test_duplicate_and_missing(tmp_path):
    table = PeerTable(tmp_path, self_name="me")
    table.add("a", "http://h:1", "h:2")
    with pytest.raises(AlreadyExists):
        table.add("a", "http://h:3", "h:4")
    with pytest.raises(NotFound):
        table.remove("b")
    with pytest.raises(ValueError):
        table.add("me", "http://h:1", "h:2")


def test_states_follow_failures(tmp_path):
    table = PeerTable(tmp_path, self_name="me")
    table.add("a", "http://h:1", "h:2")
    assert table.mark_failure("a") == "suspect"
    table.mark_failure("a")
    assert table.mark_failure("a") == "dead"
    assert table.alive() == []
    table.mark_alive("a")
    peer = table.get("a")
    assert peer.state == "alive" and peer.last_seen is not None


def test_concurrent_adds_from_threads_all_persist(tmp_path):
    table = PeerTable(tmp_path, self_name="me")
    errors: list[BaseException] = []

    def add(i: int) -> None:
        try:
            table.add(f"p{i}", f"http://127.0.0.1:{1000 + i}", f"127.0.0.1:{2000 + i}")
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors
    reloaded = PeerTable(tmp_path, self_name="me")
    reloaded.load()
    assert len(reloaded) == 40


def test_damaged_table_file_does_not_stop_the_node(tmp_path):
    (tmp_path / "peers.json").write_text("{not json")
    table = PeerTable(tmp_path, self_name="me")
    table.load(FRIENDS)
    assert [p.name for p in table.all()] == ["peer2"]


def test_limit_is_checked_atomically_with_the_insert(tmp_path):
    from peerkit.errors import TooLarge

    table = PeerTable(tmp_path, self_name="me")
    barrier = threading.Barrier(10)
    outcomes: list[str] = []

    def add(i: int) -> None:
        barrier.wait(5)
        try:
            table.add(f"p{i}", f"http://127.0.0.1:{1000 + i}", f"127.0.0.1:{2000 + i}", limit=3)
            outcomes.append("added")
        except TooLarge:
            outcomes.append("full")

    threads = [threading.Thread(target=add, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert outcomes.count("added") == 3 and len(table) == 3


def test_rest_addresses_with_credentials_are_refused(tmp_path):
    from peerkit.peers import validate_rest_url

    for url in ("http://u:p@127.0.0.1:5001", "http://u@127.0.0.1:5001"):
        with pytest.raises(ValueError, match="must not carry a user name or password") as err:
            validate_rest_url(url)
        assert "p@" not in str(err.value)  # the refusal does not repeat the password
