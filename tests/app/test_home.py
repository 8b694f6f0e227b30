"""The app shell: navigation, home page and the shared sidebar."""

from tests.app.conftest import app, no_exceptions


def test_home_renders_with_status():
    at = app("app")
    at.run()
    no_exceptions(at)
    assert at.title[0].value.endswith("Encoderscope")
    body = " ".join(m.value for m in at.markdown)
    assert "bidirectional" in body.lower() or "left and right" in body.lower()
    sidebar = " ".join(m.value for m in at.sidebar.markdown)
    assert "Device" in sidebar and "CPU" in sidebar
    assert "offline" in sidebar  # HF_HUB_OFFLINE=1 in tests
    assert "installed" in sidebar


def test_home_cards_link_every_tool():
    at = app("app")
    at.run()
    links = {link.proto.page for link in at.get("page_link")}
    assert links == {"attention", "masks", "embeddings", "vae", "vision", "atlas"}
