r"""Integrify's own files on a node, as values ``jobsync check --fleet`` can compare: pure.

A configuration file (``settings.config``, ``server-config.json``, IIS's
``applicationHost.config``) becomes a flat map from a **key path** to a value, so two nodes'
copies are compared key by key and a difference is named by where it is, never by what it
holds: these files hold connection strings and passwords.

Key paths follow .NET's configuration idiom, so they read as an administrator knows the file:

- the root element is left out: ``appSettings/...``, not ``configuration/appSettings/...``;
- an ``<add key="X" value="V"/>`` is ``appSettings/X`` with the value ``V``; any other element
  with a ``key``, ``name`` or ``id`` attribute is named by it (``add`` by the value alone,
  other tags as ``tag[value]``); other attributes are ``.../@attribute``; text is the path;
- a JSON object's keys join with ``/``; a list's items are ``name[0]``, ``name[1]``...
- a second sibling with the same name is ``name[2]`` (order counts in these files).

A file that does not parse keeps only its bytes' digest and the reason, so it is compared byte
for byte and the report says so. XML is read with the standard library's expat, which resolves
no external entity and (expat 2.4.1 and later) refuses the entity-expansion bombs.

Two of Windows' own files are read here too: IIS's pools with their identities, and the Task
Scheduler file of jobsync's fallback task (``Windows\System32\Tasks\<task name>``, the task
as Windows keeps it).
"""

from __future__ import annotations

import hashlib
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from jobsync.config.reader import parse_unc
from jobsync.jobs_folder import name_key

_IDENTITY = ("key", "name", "id")


@dataclass(frozen=True)
class ParsedFile:
    """One node's copy of one file: its values by key path, or why it has none."""

    name: str  # the file's own name, as key paths start: settings.config
    digest: str  # SHA-256 of the bytes
    values: Mapping[str, str] | None = field(default=None, repr=False)  # None: did not parse
    problem: str | None = None  # why it did not parse (positions only: never the content)

    def comparable(self, allowed: frozenset[str]) -> object:
        """What must be equal on every node: the values but the allowed keys, else the bytes."""
        if self.values is None:
            return self.digest
        return frozenset((k, v) for k, v in self.values.items() if k not in allowed)


def file_name(relative: str) -> str:
    r"""``app\settings\settings.config`` -> ``settings.config``."""
    return relative.replace("/", "\\").rsplit("\\", 1)[-1]


def parse_file(name: str, data: bytes) -> ParsedFile:
    """Read ``data`` as XML or JSON (by the name's extension, else by its first character)."""
    digest = hashlib.sha256(data).hexdigest()
    as_json = name.casefold().endswith(".json") or data.lstrip(b"\xef\xbb\xbf \r\n\t")[:1] in (
        b"{",
        b"[",
    )
    kind = "JSON" if as_json else "XML"
    try:
        values = dict(_json_values(data) if as_json else _xml_values(data))
    except (ValueError, ET.ParseError, UnicodeDecodeError, RecursionError) as exc:
        return ParsedFile(name, digest, problem=f"does not parse as {kind} ({_where(exc)})")
    return ParsedFile(name, digest, values=values)


def _where(exc: BaseException) -> str:
    """Where a parser stopped, never what it read there."""
    if isinstance(exc, json.JSONDecodeError):
        return f"line {exc.lineno}, column {exc.colno}"
    if isinstance(exc, ET.ParseError):
        line, column = exc.position
        return f"line {line}, column {column + 1}"
    if isinstance(exc, UnicodeDecodeError):
        return f"not text at byte {exc.start}"
    return type(exc).__name__


def _xml_values(data: bytes) -> Iterator[tuple[str, str]]:
    root = ET.fromstring(data)  # noqa: S314 - expat: no external entities, no expansion bombs
    yield from _element_values(root, "")


def _element_values(element: ET.Element, path: str) -> Iterator[tuple[str, str]]:
    attributes = dict(element.attrib)
    text = (element.text or "").strip()
    if text and path:
        yield path, text
    for attribute, value in sorted(attributes.items()):
        if attribute in _IDENTITY and _identity(element) == attribute:
            continue
        if attribute == "value" and _identity(element) == "key":
            yield path, value
            continue
        yield f"{path}/@{attribute}", value
    seen: Counter[str] = Counter()
    for child in element:
        if not isinstance(child.tag, str):  # a comment or processing instruction
            continue
        segment = _segment(child)
        seen[segment] += 1
        if seen[segment] > 1:
            segment = f"{segment}[{seen[segment]}]"
        yield from _element_values(child, f"{path}/{segment}" if path else segment)


def _identity(element: ET.Element) -> str | None:
    return next((a for a in _IDENTITY if a in element.attrib), None)


def _segment(element: ET.Element) -> str:
    tag = element.tag.rsplit("}", 1)[-1]  # without an XML namespace
    identity = _identity(element)
    if identity is None:
        return tag
    value = element.attrib[identity]
    return value if tag == "add" else f"{tag}[{value}]"


def _json_values(data: bytes) -> Iterator[tuple[str, str]]:
    yield from _json_walk(json.loads(data.decode("utf-8-sig")), "")


def _json_walk(value: object, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _json_walk(item, f"{path}/{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_walk(item, f"{path}[{index}]")
    else:
        yield path, value if isinstance(value, str) else json.dumps(value)


def differing_keys(a: ParsedFile, b: ParsedFile, allowed: frozenset[str]) -> list[str]:
    """The key paths where two parsed copies differ (a key missing on one side counts)."""
    mine, theirs = a.values or {}, b.values or {}  # callers compare parsed copies only
    keys = (mine.keys() | theirs.keys()) - allowed
    return sorted(k for k in keys if mine.get(k) != theirs.get(k))


def majority(copies: Mapping[str, object], prefer: str) -> object:
    """The comparable value most nodes hold; a tie goes to ``prefer``'s, then to the first."""
    counts = Counter(copies.values())
    best = max(counts.values())
    tied = [value for value, count in counts.items() if count == best]
    if prefer in copies and copies[prefer] in tied:
        return copies[prefer]
    return next(value for value in copies.values() if value in tied)


# -- paths ----------------------------------------------------------------------------------

PathKind = Literal["unc", "drive", "other"]
_DRIVE = re.compile(r"^([A-Za-z]):([\\/]|$)")
_UNC = re.compile(r"^\\\\[^\\/]+\\[^\\/]+")


def path_kind(value: str) -> PathKind:
    r"""``\\server\share\...`` is ``unc``; ``D:\...`` is ``drive``; anything else ``other``."""
    if _UNC.match(value) and parse_unc(value) is not None:
        return "unc"
    return "drive" if _DRIVE.match(value) else "other"


def drive_letter(value: str) -> str | None:
    r"""``D`` for ``D:\files``; ``None`` for anything else."""
    found = _DRIVE.match(value)
    return found.group(1).upper() if found else None


def looks_like_path(value: str) -> bool:
    """Whether a value is a folder path an administrator may want to name (``--discover``)."""
    return path_kind(value) != "other"


def path_key(value: str) -> str:
    """A path as Windows compares it: case-blind, one kind of slash, no trailing slash."""
    return name_key(value.replace("/", "\\").rstrip("\\"))


def key_path(file: str, key: str) -> str:
    """``settings.config:appSettings/X``: how the config and the report name one value."""
    return f"{file}:{key}"


def split_key_path(item: str) -> tuple[str, str]:
    """``settings.config:appSettings/X`` -> (``settings.config``, ``appSettings/X``)."""
    file, _, key = item.partition(":")
    return file, key


def find_value(files: Sequence[ParsedFile], item: str) -> tuple[ParsedFile | None, str | None]:
    """The file a key path names (by file name, case-blind) and its value there, if any."""
    file, key = split_key_path(item)
    parsed = next((f for f in files if name_key(f.name) == name_key(file)), None)
    if parsed is None or parsed.values is None:
        return parsed, None
    return parsed, parsed.values.get(key)


# -- IIS ------------------------------------------------------------------------------------

_BUILT_IN_IDENTITIES = {
    "localsystem": "LocalSystem",
    "localservice": r"NT AUTHORITY\LocalService",
    "networkservice": r"NT AUTHORITY\NetworkService",
}


def pool_identities(data: bytes) -> dict[str, str]:
    r"""Each IIS application pool's identity from ``applicationHost.config``; raises ValueError.

    ``SpecificUser`` pools answer their ``userName``; the default (``ApplicationPoolIdentity``)
    answers ``IIS APPPOOL\<pool>``, which reaches a network share as the node's computer
    account. A pool without its own ``processModel`` takes ``applicationPoolDefaults``'. The
    password attribute beside the user name is never read.
    """
    try:
        root = ET.fromstring(data)  # noqa: S314 - as above
    except ET.ParseError as exc:
        raise ValueError(f"applicationHost.config does not parse as XML ({_where(exc)})") from None
    pools = root.find("system.applicationHost/applicationPools")
    if pools is None:
        return {}
    defaults = pools.find("applicationPoolDefaults/processModel")
    found: dict[str, str] = {}
    for pool in pools.findall("add"):
        name = pool.get("name")
        if name:
            model = pool.find("processModel")
            found[name] = _identity_of(name, model if model is not None else defaults)
    return found


def _identity_of(pool: str, model: ET.Element | None) -> str:
    kind = (model.get("identityType") if model is not None else None) or "ApplicationPoolIdentity"
    if kind.casefold() == "specificuser":
        user = model.get("userName") if model is not None else None
        return user or "SpecificUser with no user name"
    if kind.casefold() == "applicationpoolidentity":
        return f"IIS APPPOOL\\{pool}"
    return _BUILT_IN_IDENTITIES.get(kind.casefold(), kind)


def machine_account(account: str) -> bool:
    """Whether an account reaches network shares as the node's computer account (NODE$)."""
    key = account.casefold()
    return key in ("localsystem", r"nt authority\system", r"nt authority\networkservice") or (
        key.startswith("iis apppool\\")
    )


def same_account(a: str, b: str) -> bool:
    r"""``CORP\svc`` and ``svc@corp.example.com`` may be one account; compared by user and realm.

    Only the user part and the domain's first label are compared, which is what both forms
    share; a mismatch in either is a different account.
    """
    return account_key(a) == account_key(b)


def account_key(account: str) -> tuple[str, str]:
    """An account as (the domain's first label, the user), both case-blind."""
    text = account.strip().casefold()
    if "\\" in text:
        domain, user = text.split("\\", 1)
    elif "@" in text:
        user, domain = text.split("@", 1)
    else:
        domain, user = "", text
    return domain.split(".", 1)[0], user


# -- Windows' Task Scheduler files --------------------------------------------------------------

TASK_NAMESPACE = "http://schemas.microsoft.com/windows/2004/02/mit/task"
_TASK = {"t": TASK_NAMESPACE}
_BUILT_IN_SIDS = {"S-1-5-18": "SYSTEM", "S-1-5-19": "LOCAL SERVICE", "S-1-5-20": "NETWORK SERVICE"}
_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", re.IGNORECASE)


@dataclass(frozen=True)
class TaskDefinition:
    """What a node's Task Scheduler file says of a task: on or off, what it runs, as whom."""

    enabled: bool
    pushes: bool  # an action runs ``jobsync push``
    account: str  # who it runs as; a built-in account by its name, not its SID
    every_minutes: float | None  # how often it repeats; None: it does not

    def summary(self) -> str:
        """``runs jobsync push every 5 minutes as SYSTEM``, as far as the file says."""
        runs = "runs jobsync push" if self.pushes else "runs something other than jobsync push"
        every = "" if self.every_minutes is None else f" every {self.every_minutes:g} minutes"
        return f"{runs}{every} as {self.account}" + ("" if self.enabled else ", disabled")


def task_definition(data: bytes | str) -> TaskDefinition:
    r"""A task as ``Windows\System32\Tasks`` keeps it (UTF-16) or schtasks prints it; ValueError."""
    try:
        root = ET.fromstring(data)  # noqa: S314 - expat: no external entities, no bombs
    except ET.ParseError as exc:
        raise ValueError(f"it does not parse as XML ({_where(exc)})") from None
    if root.tag != f"{{{TASK_NAMESPACE}}}Task":
        raise ValueError("it is not a Task Scheduler task")

    def text(path: str) -> str | None:
        found = root.find(path, _TASK)
        return None if found is None or found.text is None else found.text.strip()

    pushes = any(
        _runs_push(exe.findtext("t:Command", "", _TASK), exe.findtext("t:Arguments", "", _TASK))
        for exe in root.findall("t:Actions/t:Exec", _TASK)
    )
    user = text("t:Principals/t:Principal/t:UserId") or "the account that registered it"
    repeat = root.find(".//t:Triggers/*/t:Repetition/t:Interval", _TASK)
    return TaskDefinition(
        enabled=(text("t:Settings/t:Enabled") or "true").casefold() != "false",
        pushes=pushes,
        account=_BUILT_IN_SIDS.get(user.upper(), user),
        every_minutes=_minutes(repeat.text) if repeat is not None and repeat.text else None,
    )


def _runs_push(command: str, arguments: str) -> bool:
    """``python -I -m jobsync push -c ...`` (install.ps1's), or ``jobsync.exe push ...``."""
    words = [w.strip('"').casefold() for w in f"{command} {arguments}".split()]
    return any(
        w.endswith(("jobsync", "jobsync.exe")) and words[i + 1 : i + 2] == ["push"]
        for i, w in enumerate(words)
    )


def _minutes(duration: str) -> float | None:
    """An XML duration (``PT5M``, ``PT1H``, ``P1D``) in minutes; None if it is none."""
    match = _DURATION.fullmatch(duration.strip())
    if match is None or not any(match.groups()):
        return None
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return days * 1440 + hours * 60 + minutes + seconds / 60
