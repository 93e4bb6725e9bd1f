"""The official `openai` SDK drives `sora serve` unchanged: only `base_url` and `api_key` differ."""

from __future__ import annotations

import io
import os

import openai
import pytest
from openai import OpenAI
from PIL import Image

from sora_cli.server.running import serve_local
from tests.cameo_clips import picture_mp4

os.environ.setdefault("HF_HUB_OFFLINE", "1")
OURS = {"fps": 8, "steps": 2}  # our extensions, sent as the SDK sends any extra field


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "server-cache"  # shared with the other server tests
    with serve_local(tmp_path_factory.mktemp("sdk"), {"alice": "admin", "bob": "user"}, cache,
                     poll_after_ms=100, webhook_allow_private=True) as server:
        yield server


def sdk(server, who: str = "alice") -> OpenAI:
    return OpenAI(base_url=f"{server.url}/v1", api_key=server.keys[who], max_retries=0, timeout=60)


def test_create_and_poll_download_remix_edit_list_delete(served, tmp_path):
    from sora_cli.provenance.check import check_files

    client = sdk(served)
    video = client.videos.create_and_poll(prompt="a paper boat on a river", size="128x128", seconds="1",
                                          extra_body=OURS)
    assert isinstance(video, openai.types.Video)
    assert video.status == "completed" and video.progress == 100 and video.seconds == "1.125"
    assert video.size == "128x128" and video.error is None and video.model == "tiny"

    path = tmp_path / "boat.mp4"
    client.videos.download_content(video.id).write_to_file(path)
    [check] = check_files([path], anchors_pem=None, library=None)
    assert check.status in ("trusted", "intact_untrusted"), check.to_dict()
    thumbnail = client.videos.download_content(video.id, variant="thumbnail").read()
    assert Image.open(io.BytesIO(thumbnail)).format == "JPEG"

    remix = client.videos.remix(video.id, prompt="the same boat in a snowstorm")
    assert remix.status == "queued" and remix.remixed_from_video_id == video.id
    remix = client.videos.poll(remix.id)
    assert remix.status == "completed" and remix.remixed_from_video_id == video.id

    # the SDK's `edit` sends `video` as an upload (its {"id": …} form fails in the SDK itself before sending)
    edit = client.videos.edit(prompt="the boat at night", video=path, extra_body={"size": "128x128", **OURS})
    edit = client.videos.poll(edit.id)
    assert edit.status == "completed" and edit.parameters["task"] == "v2v" and edit.num_frames == 9

    listed = [v.id for v in client.videos.list(limit=1)]  # auto-paging follows `after` = last_id
    assert listed == [edit.id, remix.id, video.id]
    assert [v.id for v in client.videos.list(order="asc").data] == listed[::-1]

    deleted = client.videos.delete(remix.id)
    assert deleted.deleted and deleted.object == "video.deleted" and deleted.id == remix.id
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(remix.id)


def test_errors_arrive_as_the_sdk_s_exceptions(served):
    client = sdk(served)
    with pytest.raises(openai.BadRequestError) as bad:
        client.videos.create(prompt="a harbour at noon", size="130x128")  # Wan needs multiples of 16
    assert bad.value.code == "invalid_value" and bad.value.param == "size"
    with pytest.raises(openai.BadRequestError) as seconds:
        client.videos.create(prompt="a harbour at noon", seconds="-4")
    assert seconds.value.param == "seconds"
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=f"{served.url}/v1", api_key="sk-sora-wrong", max_retries=0).videos.list()
    queued = client.videos.create(prompt="a boat waiting at the dock", size="128x128", seconds="1", extra_body=OURS)
    with pytest.raises(openai.NotFoundError):
        sdk(served, "bob").videos.retrieve(queued.id)  # another user's video does not exist for bob
    client.post(f"/videos/{queued.id}/cancel", cast_to=openai.types.Video)
    cancelled = client.videos.poll(queued.id)
    assert cancelled.status == "failed" and cancelled.error.code == "cancelled"


def test_characters_and_webhook_endpoints_speak_the_sdk_shapes(served, tmp_path):
    client = sdk(served)
    from skimage import data

    clip = tmp_path / "cat.mp4"
    picture_mp4(data.chelsea(), clip)
    character = client.videos.create_character(name="chelsea", video=clip)
    assert character.name == "chelsea" and character.id
    assert client.videos.get_character(character.id).name == "chelsea"
    hook = client.webhooks.create(name="ci", url="http://127.0.0.1:9/hook", event_types=["video.completed"])
    assert hook.signing_secret.startswith("whsec_")
    assert [h.id for h in client.webhooks.list()] == [hook.id]
    assert client.webhooks.delete(hook.id).deleted
