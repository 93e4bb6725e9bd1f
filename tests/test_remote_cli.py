"""Remote mode: the making commands against a real `sora serve` on loopback, through the real CLI."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from keyring.backend import KeyringBackend
from PIL import Image

from sora_cli.config import Paths
from sora_cli.remote import Credentials, server_url
from sora_cli.server.running import serve_local
from tests.conftest import FAST, json_lines


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "server-cache"  # shared with the other server tests
    with serve_local(tmp_path_factory.mktemp("remote-cli"), {"alice": "admin", "bob": "user"}, cache=cache,
                     poll_after_ms=100) as server:
        yield server


class MemoryKeyring(KeyringBackend):
    """A keyring backend that keeps its entries in a dict (the real interface, no OS store)."""

    priority = 1

    def __init__(self):
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.entries.get((service, username))

    def set_password(self, service, username, password):
        self.entries[(service, username)] = password

    def delete_password(self, service, username):
        self.entries.pop((service, username))


def test_login_checks_the_key_and_keeps_it_out_of_sight(served, sora, home):
    bad = sora("login", "--server", served.url, "--key-stdin", input="sk-sora-wrong\n")
    assert bad.exit_code == 2 and "refused the key" in bad.stderr
    credentials = Credentials(Paths.from_env())
    assert credentials.get(served.url) is None and not credentials.file.exists()

    key = served.keys["alice"]
    good = sora("login", "--server", served.url + "/v1/", "--key-stdin", input=key + "\n")
    assert good.exit_code == 0, good.output
    assert key not in good.output and str(credentials.file) in good.stderr  # the test keyring is the fail one
    assert stat.S_IMODE(credentials.file.stat().st_mode) == 0o600
    assert credentials.get(served.url) == (key, str(credentials.file))

    assert sora("logout", "--server", served.url).exit_code == 0
    assert credentials.get(served.url) is None


def test_credentials_prefer_the_environment_then_the_keyring(home):
    ring = MemoryKeyring()
    credentials = Credentials(Paths.from_env(), keyring_backend=ring, environ={})
    assert credentials.save("http://box:8000", "sk-one") == "the OS keyring"
    assert credentials.get("http://box:8000") == ("sk-one", "the OS keyring")
    assert not credentials.file.exists()  # nothing on disk when a keyring takes it
    with_env = Credentials(Paths.from_env(), keyring_backend=ring, environ={"SORA_API_KEY": "sk-env"})
    assert with_env.get("http://box:8000") == ("sk-env", "$SORA_API_KEY")
    assert credentials.delete("http://box:8000") and credentials.get("http://box:8000") is None


def test_server_address_comes_from_option_env_or_setting(monkeypatch):
    from sora_cli.config import Config
    from sora_cli.errors import UsageError

    config = Config.load()
    monkeypatch.delenv("SORA_SERVER", raising=False)
    assert server_url(None, config) is None
    monkeypatch.setenv("SORA_SERVER", "http://env:1/")
    assert server_url(None, config) == "http://env:1"
    assert server_url("https://opt:2/v1", config) == "https://opt:2"
    with pytest.raises(UsageError):
        server_url("gpu-box:8000", config)


def test_generate_remix_and_animate_on_a_server(served, sora, home, tmp_path, monkeypatch):
    monkeypatch.setenv("SORA_API_KEY", served.keys["alice"])
    out = tmp_path / "clips"
    out.mkdir()
    made = sora("generate", "a kite over the sea", *FAST, "--server", served.url, "-o", out / "kite.mp4", "--json")
    assert made.exit_code == 0, made.output
    video = json.loads(made.stdout)
    assert video["status"] == "completed" and video["id"].startswith("video_")
    assert video["parameters"]["remote"] == {"server": served.url, "id": video["id"]}
    assert video["parameters"]["provenance"] in ("trusted", "intact_untrusted")
    assert sorted(p.name for p in out.iterdir()) == ["kite.mp4"]  # no temp file beside it
    assert video["watermark_id"] and video["num_frames"] == 9

    # the library knows it like a local video: @last finds it, verify-provenance checks it
    assert video["id"] in sora("library", "list").stdout
    assert sora("verify-provenance", out / "kite.mp4").exit_code == 0

    # a remix of a clip this server made names it by id (no upload) and keeps the lineage
    remixed = sora("remix", "@last", "the kite turns into a gull", "--server", served.url, "--strength", "0.5",
                   "-o", out / "gull.mp4", "--json")
    assert remixed.exit_code == 0, remixed.output
    child = json.loads(remixed.stdout)
    assert child["remixed_from_video_id"] == video["id"]
    assert child["parameters"]["request"]["strength"] == 0.5

    photo = tmp_path / "photo.png"
    Image.linear_gradient("L").convert("RGB").resize((96, 64)).save(photo)
    animated = sora("animate-image", photo, "the gradient drifts", *FAST, "--server", served.url,
                    "-o", out / "drift.mp4", "--events")
    assert animated.exit_code == 0, animated.output
    events = [e for e in json_lines(animated.stderr) if e.get("event") == "progress"]
    progress = [e["step"] for e in events if e.get("total") == 100]
    assert progress and progress == sorted(progress) and progress[-1] == 100  # the server's progress, in order


def test_refusals_and_local_only_options(served, sora, tmp_path, monkeypatch):
    monkeypatch.setenv("SORA_API_KEY", served.keys["bob"])
    target = tmp_path / "no.mp4"
    refused = sora("generate", "an explicit sex scene, fully nude", *FAST, "--server", served.url, "-o", target)
    assert refused.exit_code == 5 and "sexual" in refused.stderr and not target.exists()
    local_only = sora("generate", "a quiet lake", "--soundtrack", "rain", "--server", served.url, "-o", target)
    assert local_only.exit_code == 2 and "--soundtrack works on local runs only" in local_only.stderr
    monkeypatch.delenv("SORA_API_KEY")
    no_key = sora("generate", "a quiet lake", "--server", served.url, "-o", target)
    assert no_key.exit_code == 2 and "sora login" in no_key.stderr


def test_a_download_that_fails_the_provenance_check_is_not_kept(served, home, tmp_path):
    from sora_cli.errors import ProvenanceInvalid
    from sora_cli.remote import RemoteStudio
    from sora_cli.requests import GenerateRequest

    studio = RemoteStudio(served.url, served.keys["alice"])
    target = tmp_path / "tampered.mp4"
    job = studio.prepare(GenerateRequest(prompt="a red door in the rain", size="128x128", seconds=1, fps=8, steps=2,
                                         output=target))
    remote = studio.wait(studio.submit(job)["id"])
    stored = served.settings.media_dir / f"{remote['id']}.mp4"  # the server's copy, altered after signing
    data = bytearray(stored.read_bytes())
    at = data.find(b"mdat") + 200
    data[at] ^= 0xFF
    stored.write_bytes(bytes(data))
    with pytest.raises(ProvenanceInvalid, match="failed the provenance check"):
        studio.fetch(remote, job)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temp file
    studio.close()


def _dead_url() -> str:
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_batch_spreads_over_servers_retries_elsewhere_and_resumes(served, home, tmp_path):
    from sora_cli.batch import read_lines, read_manifest, run_batch_remote
    from sora_cli.engines.remote import RemoteClient
    from sora_cli.remote import RemoteStudio

    lines_file = tmp_path / "jobs.jsonl"
    lines_file.write_text("\n".join(json.dumps({"prompt": p, "size": "128x128", "seconds": 1, "fps": 8, "steps": 2})
                                    for p in ("a lighthouse at dusk", "a fox in snow", "rain on a window")))
    dead = _dead_url()
    slept: list[float] = []

    def studios():
        return [RemoteStudio(dead, "sk-none", client=RemoteClient(dead, "sk-none", retries=0)),
                RemoteStudio(served.url, served.keys["bob"])]

    out = tmp_path / "out"
    result = run_batch_remote(studios(), read_lines(lines_file, {}), out, concurrency=2, retries=2, backoff=0.5,
                              sleep=slept.append)
    assert (result.completed, result.skipped, result.failed) == (3, 0, [])
    entries = [json.loads(t) for t in (out / "manifest.jsonl").read_text().splitlines()]
    assert all(e["status"] == "completed" and e["server"] == served.url for e in entries)
    retried = [e for e in entries if e["attempts"] == 2]  # the ones that went to the dead server first
    assert retried and slept == [0.5] * len(retried)
    assert sorted(p.name for p in out.iterdir()) == sorted(["manifest.jsonl", *(Path(e["output"]).name
                                                                                for e in entries)])
    again = run_batch_remote(studios(), read_lines(lines_file, {}), out, resume=True, sleep=slept.append)
    assert (again.completed, again.skipped) == (0, 3) and len(read_manifest(out / "manifest.jsonl")) == 3


def test_batch_cli_on_a_server_reports_refused_lines(served, sora, tmp_path, monkeypatch):
    monkeypatch.setenv("SORA_API_KEY", served.keys["bob"])
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("a paper boat on a pond\nan explicit sex scene, fully nude\n")
    result = sora("batch", jobs, "-d", tmp_path / "out", "--server", served.url, *FAST, "--json")
    assert result.exit_code == 1 and "jobs.txt:2:" in result.stderr and "sexual" in result.stderr
    [made] = json_lines(result.stdout)
    assert made["status"] == "completed" and Path(made["path"]).is_file()
    assert "1 made, 0 already done, 1 failed" in result.stderr


def test_cameos_on_a_server_from_the_cli(served, sora, tmp_path, monkeypatch):
    pytest.importorskip("dlib")
    from tests import cameo_clips as clips

    url = served.url
    monkeypatch.setenv("SORA_API_KEY", served.keys["bob"])
    issued = sora("cameo", "challenge", "--server", url, "--json")
    assert issued.exit_code == 0, issued.output
    clip = clips.write_clip(clips.turning_clip(json.loads(issued.stdout)["turns"]), tmp_path / "bob.mp4")
    enrolled = sora("cameo", "enroll", "--server", url, "--video", clip, "--name", "Bob")
    assert enrolled.exit_code == 0, enrolled.output
    assert enrolled.stdout.strip() == "@bob"

    monkeypatch.setenv("SORA_API_KEY", served.keys["alice"])
    target = tmp_path / "wave.mp4"
    refused = sora("generate", "@bob waves hello", *FAST, "--server", url, "-o", target)
    assert refused.exit_code == 5 and not target.exists()

    monkeypatch.setenv("SORA_API_KEY", served.keys["bob"])
    granted = sora("cameo", "grant", "bob", "alice", "--audience", "approved", "--server", url, "--json")
    assert json.loads(granted.stdout)["approved"] == ["alice"]

    monkeypatch.setenv("SORA_API_KEY", served.keys["alice"])
    listed = json_lines(sora("cameo", "list", "--server", url, "--json").stdout)
    assert [(c["handle"], c["access"]) for c in listed] == [("bob", "permitted")]
    made = sora("generate", "@bob waves hello", *FAST, "--server", url, "-o", target, "--json")
    assert made.exit_code == 0, made.output

    monkeypatch.setenv("SORA_API_KEY", served.keys["bob"])
    [use] = json_lines(sora("cameo", "uses", "bob", "--server", url, "--json").stdout)
    assert use["author"] == "alice" and use["id"] == json.loads(made.stdout)["id"]
    revoked = sora("cameo", "revoke", "bob", "--yes", "--server", url, "--json")
    assert revoked.exit_code == 0 and json.loads(revoked.stdout)["drafts_removed"] == 1

    monkeypatch.setenv("SORA_API_KEY", served.keys["alice"])
    assert sora("generate", "@bob waves again", *FAST, "--server", url, "-o", target).exit_code == 5
