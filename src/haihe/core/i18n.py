"""Console languages — 界面语言: message catalogues, ``translate`` and language negotiation.

Each package keeps its own messages beside its code, one TOML file per language:
``haihe/<package>/locales/zh.toml`` and ``en.toml``. Every key a package defines is namespaced by
the package's name, so ``[login] title = "登录"`` in ``haihe/orgs/locales/zh.toml`` is looked up as
``orgs.login.title``. Adding a domain's messages therefore never touches a shared file, and two
domains cannot collide. ``core`` holds the shared vocabulary (role names, common words).

Placeholders use ``str.format`` syntax: ``"共 {total} 条"``. A test checks that both languages
define the same keys with the same placeholders, and that every key the templates use exists.
"""

from __future__ import annotations

import functools
import logging
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from starlette.requests import Request

log = logging.getLogger("haihe.i18n")

LANGUAGES: Final = ("zh", "en")
DEFAULT_LANGUAGE: Final = "zh"
LANG_COOKIE: Final = "haihe_lang"
# The value of <html lang>: the console's Chinese is Simplified Chinese, as in mainland China.
HTML_LANG: Final = {"zh": "zh-CN", "en": "en"}
# Each language's own name, shown by the switch whatever the current language is.
LANGUAGE_NAMES: Final = {"zh": "中文", "en": "English"}

PACKAGE_ROOT: Final = Path(__file__).resolve().parent.parent


def catalogue_files(root: Path = PACKAGE_ROOT) -> Iterator[tuple[str, str, Path]]:
    """Every catalogue file under ``root`` as (package, language, path), in a stable order."""
    for path in sorted(root.glob("*/locales/*.toml")):
        yield path.parent.parent.name, path.stem, path


def _flatten(prefix: str, table: Mapping[str, Any], into: dict[str, str], source: Path) -> None:
    for name, value in table.items():
        key = f"{prefix}.{name}"
        if isinstance(value, Mapping):
            _flatten(key, value, into, source)
        elif isinstance(value, str):
            into[key] = value
        else:
            raise ValueError(f"{source}: {key} must be a string or a table, not {value!r}")


@functools.cache
def catalogues() -> Mapping[str, Mapping[str, str]]:
    """Every language's messages, ``{lang: {key: text}}``, read once from the package files."""
    merged: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}
    for package, lang, path in catalogue_files():
        if lang not in merged:
            raise ValueError(f"{path}: unknown language {lang!r}; expected one of {LANGUAGES}")
        with path.open("rb") as fh:
            _flatten(package, tomllib.load(fh), merged[lang], path)
    return MappingProxyType({lang: MappingProxyType(keys) for lang, keys in merged.items()})


def translate(lang: str, key: str, /, **values: Any) -> str:
    """The text of ``key`` in ``lang`` with ``values`` filled in.

    A key missing in ``lang`` falls back to Chinese, then to the key itself (logged), so a page
    still renders; the catalogue test keeps that from reaching a release.
    """
    cats = catalogues()
    text = cats.get(lang, {}).get(key)
    if text is None:
        text = cats[DEFAULT_LANGUAGE].get(key)
        if text is None:
            log.warning("no translation for %r", key)
            return key
    return text.format(**values) if values else text


def normalise(code: str | None) -> str | None:
    """The supported language a tag such as ``zh-Hans-CN`` or ``en_GB`` stands for, or None."""
    if not code:
        return None
    primary = code.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in LANGUAGES else None


def from_accept_language(header: str | None) -> str | None:
    """The supported language the ``Accept-Language`` header prefers most, or None."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        lang = normalise(tag)
        if lang is not None and quality > 0:
            ranked.append((-quality, position, lang))
    return min(ranked)[2] if ranked else None


def negotiate(
    *,
    cookie: str | None,
    saved: str | None,
    accept_language: str | None,
    default: str = DEFAULT_LANGUAGE,
) -> str:
    """The language to use: an explicit choice, else the user's saved one, else the browser's."""
    return (
        normalise(cookie)
        or normalise(saved)
        or from_accept_language(accept_language)
        or normalise(default)
        or DEFAULT_LANGUAGE
    )


def request_language(request: Request) -> str:
    """The language of the console for ``request``.

    The signed-in user's saved language is read from the principal the request has already
    resolved (``request.state.principal``); the installation default from the app's settings.
    """
    principal = getattr(request.state, "principal", None)
    settings = getattr(request.app.state, "settings", None)
    return negotiate(
        cookie=request.cookies.get(LANG_COOKIE),
        saved=getattr(principal, "language", None),
        accept_language=request.headers.get("accept-language"),
        default=getattr(settings, "default_language", DEFAULT_LANGUAGE),
    )
