"""Hostile URLs wherever a URL is taken: ``--prometheus``, ``watch URL``, ``check https://``, ``--map URL``,
``DERPTOOL_MAP`` and ``DERPTOOL_DEFAULT_MAP_URL``. All go through :func:`derptool.net.url.parse_url`: one line,
exit 2, the password never echoed."""

from __future__ import annotations

import pytest

from derptool.errors import UsageError
from derptool.net.url import parse_url, redact
from tests.hostile.harness import SECRET, assert_refused, run

BAD_URLS: dict[str, tuple[str, str]] = {
    "unclosed IPv6 bracket": ("http://[::1", "not closed"),
    "unclosed bracket with a path": ("http://[::1/metrics", "not closed"),
    "bracket around a name": ("http://[example.com]/", "not an IPv6 address"),
    "text after the bracket": ("http://[::1]x/", "only :PORT"),
    "stray closing bracket": ("http://a]b/", "brackets"),
    "bare IPv6 address": ("http://::1:9090/", "brackets"),
    "control character": ("http://a\x01b/", "U+0001"),
    "NUL byte": ("http://a\x00b/", "U+0000"),
    "escape sequence": ("http://a\x1b[31mb/", "U+001B"),
    "line separator U+2028": ("http://a\u2028b/", "U+2028"),
    "paragraph separator U+2029": ("http://a\u2029b/", "U+2029"),
    "zero-width space": ("http://a\u200bb/", "U+200B"),
    "tab in the host": ("http://a\tb/", "U+0009"),
    "space in the path": ("http://a.example/x y", "U+0020"),
    "newline in the path": ("http://a.example/x\ny", "U+000A"),
    "port too large": ("http://a.example:99999/", "1 to 65535"),
    "port zero": ("http://a.example:0/", "1 to 65535"),
    "negative port": ("http://a.example:-1/", "1 to 65535"),
    "full-width port": ("http://a.example:\uff18\uff10/", "1 to 65535"),
    "port with letters": ("http://a.example:80a/", "1 to 65535"),
    "two ports": ("http://a.example:80:80/", "brackets"),
    "no host": ("http:///path", "no host"),
    "nothing after the scheme": ("http://", "no host"),
    "not an IPv4 address": ("http://300.1.1.1/", "IPv4"),
    "empty label": ("http://a..example/", "host name"),
    "label with a leading hyphen": ("http://-a.example/", "host name"),
    "host name of 300 characters": ("http://" + "a" * 300 + "/", "host name"),
    "URL of 9000 characters": ("http://a.example/" + "x" * 9000, "at most"),
    "bad internationalised name": ("http://\u00e9" * 1 + "xn--/", "host"),
    "other scheme": ("ftp://a.example/", "not an http(s) URL"),
    "no scheme separator": ("http//a.example/", ""),  # a file name to --map, a host name to check
    "unclosed bracket with a password": (f"http://u:{SECRET}@[::1/", "not closed"),
    "control character with a password": (f"http://u:{SECRET}@a\x07b/", "U+0007"),
}


def _https(url: str) -> str:
    return "https" + url[4:] if url.startswith("http:") else url


@pytest.mark.parametrize(("url", "mention"), list(BAD_URLS.values()), ids=list(BAD_URLS))
def test_prometheus_url(url: str, mention: str) -> None:
    assert_refused(run(["impact", "--prometheus", url, "--region", "nyc", "-m", "snapshot"]), 2, mention)


@pytest.mark.parametrize(("url", "mention"), list(BAD_URLS.values()), ids=list(BAD_URLS))
def test_watch_url(url: str, mention: str) -> None:
    assert_refused(run(["watch", "--once", url]), 2, mention)


@pytest.mark.parametrize(("url", "mention"), list(BAD_URLS.values()), ids=list(BAD_URLS))
def test_check_url(url: str, mention: str) -> None:
    fixed = _https(url)
    want = "not an https URL" if mention == "not an http(s) URL" else mention
    assert_refused(run(["check", fixed]), 2, want)


@pytest.mark.parametrize(("url", "mention"), list(BAD_URLS.values()), ids=list(BAD_URLS))
def test_map_option_and_environment(url: str, mention: str) -> None:
    if "\x00" in url:
        pytest.skip("no argument or environment variable can hold a NUL byte")
    if "://" not in url:
        assert_refused(run(["map", "--map", url]), 2)  # not URL-shaped: --map reads it as a file name
        return
    assert_refused(run(["map", "--map", url]), 2, mention, "--map")
    assert_refused(run(["map"], env={"DERPTOOL_MAP": url}), 2, mention, "DERPTOOL_MAP")


@pytest.mark.parametrize(("url", "mention"), list(BAD_URLS.values()), ids=list(BAD_URLS))
def test_default_map_url_environment(url: str, mention: str) -> None:
    """A malformed DERPTOOL_DEFAULT_MAP_URL is a usage error, not a silent fall-back to the snapshot."""
    if "\x00" in url:
        pytest.skip("no environment variable can hold a NUL byte")
    assert_refused(run(["map"], env={"DERPTOOL_DEFAULT_MAP_URL": url}), 2, mention, "DERPTOOL_DEFAULT_MAP_URL")


@pytest.mark.parametrize(
    "args",
    [
        ["impact", "--prometheus", f"http://admin:{SECRET}@127.0.0.1:9/", "--region", "nyc", "-m", "snapshot"],
        ["watch", "--once", f"http://admin:{SECRET}@127.0.0.1:9/metrics"],
        ["map", "--map", f"http://admin:{SECRET}@127.0.0.1:9/derpmap.json"],
    ],
    ids=["prometheus", "watch", "map"],
)
def test_a_password_is_never_echoed_in_a_network_error(args: list[str]) -> None:
    line = assert_refused(run(args), 3)
    assert "admin:***@127.0.0.1:9" in line


def test_redact_and_parse_agree_on_what_is_the_password() -> None:
    assert redact(f"https://u:{SECRET}@h/p") == "https://u:***@h/p"
    assert redact(f"https://u:p@ss:{SECRET}@h/p@x") == "https://u:***@h/p@x"
    assert redact("https://h/p?a=b:c@d") == "https://h/p?a=b:c@d"  # no userinfo: nothing to hide
    url = parse_url(f"http://u:{SECRET}@[::1]:9090/x", "--prometheus")
    assert (url.host, url.port, url.has_password) == ("::1", 9090, True)
    assert SECRET not in str(url) and SECRET not in url.shown


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("http://127.0.0.1:9090", "127.0.0.1", 9090),
        ("https://[fd7a:115c:a1e0::1]:443/derp", "fd7a:115c:a1e0::1", 443),
        ("http://Prometheus.Example.COM/", "prometheus.example.com", None),
        ("http://bücher.example/", "xn--bcher-kva.example", None),
        ("http://a_b.internal:65535/", "a_b.internal", 65535),
        ("  http://localhost:9090/  ", "localhost", 9090),
        ("HTTP://localhost/", "localhost", None),
        ("http://localhost:/x", "localhost", None),
    ],
)
def test_good_urls_are_accepted(text: str, host: str, port: int | None) -> None:
    url = parse_url(text, "--x")
    assert (url.host, url.port) == (host, port)


def test_refusals_are_usage_errors_naming_the_source() -> None:
    with pytest.raises(UsageError, match=r"^DERPTOOL_MAP: 'http://\[::1' is not a usable URL"):
        parse_url("http://[::1", "DERPTOOL_MAP")
