"""Windows service control on a peer (MS-SCMR over the ``svcctl`` pipe), bounded in time.

What a failover needs of a node's services: their state, start and stop, their start type,
and the account each runs as. Every call goes over :mod:`~jobsync.transport.smb.rpc` on
jobsync's own SMB channel, so a node that stops answering fails the call within the peer's
timeout, as a file transfer would. Windows answers in error numbers; each becomes a
:class:`ServiceControlError` that names the node, the service and what to do.

Windows lets only a local administrator of the node control its services remotely, and a
service is named by its short name (``Spooler``), not its display name (``Print Spooler``).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Literal, final, get_args

from jobsync.config.model import PeerConfig
from jobsync.errors import PeerError, PeerUnreachableError
from jobsync.transport.smb.rpc import (
    NCA_S_OP_RNG_ERROR,
    NdrReader,
    NdrWriter,
    RpcFaultError,
    RpcPipe,
    SyntaxId,
    fault_words,
)
from jobsync.transport.smb.wire import MalformedReplyError

SVCCTL: Final = SyntaxId(uuid.UUID("367abb81-9844-35f1-ad32-98f038001003"), 2)
# A call the server says it is working on (STATUS_PENDING) may take this long: Windows waits
# up to 30 s for a starting service to answer its service manager.
CALL_LIMIT_SECONDS: Final = 45.0

ServiceState = Literal[
    "stopped",
    "start pending",
    "stop pending",
    "running",
    "continue pending",
    "pause pending",
    "paused",
]
StartType = Literal["boot", "system", "auto", "demand", "disabled"]
# In the order of their codes: SERVICE_STOPPED is 1, SERVICE_BOOT_START 0.
_STATES: Final[tuple[ServiceState, ...]] = get_args(ServiceState)
_START_TYPES: Final[tuple[StartType, ...]] = get_args(StartType)
_START_TYPE_WORDS: Final[dict[StartType, str]] = {  # as the Services console shows them
    "boot": "Boot",
    "system": "System",
    "auto": "Automatic",
    "demand": "Manual",
    "disabled": "Disabled",
}

# Operation numbers (MS-SCMR 3.1.4)
_CLOSE, _CONTROL, _QUERY_STATUS, _CHANGE_CONFIG = 0, 1, 6, 11
_OPEN_MANAGER, _OPEN_SERVICE, _QUERY_CONFIG, _START = 15, 16, 17, 19
# Access rights (MS-SCMR 2.2.1): each call asks for what it needs and nothing more.
_SC_MANAGER_CONNECT = 0x1
_QUERY_CONFIG_ACCESS, _CHANGE_CONFIG_ACCESS, _QUERY_STATUS_ACCESS = 0x1, 0x2, 0x4
_START_ACCESS, _STOP_ACCESS = 0x10, 0x20
_SERVICE_CONTROL_STOP = 1
_NO_CHANGE = 0xFFFFFFFF
_MAX_CONFIG_BUFFER = 8192  # the largest answer RQueryServiceConfigW may ask for

# Windows errors (MS-ERREF 2.2)
_ACCESS_DENIED, _INSUFFICIENT_BUFFER, _NO_SUCH_SERVICE = 5, 122, 1060
_ALREADY_RUNNING, _NOT_ACTIVE = 1056, 1062
_ERROR_WORDS: Final = {
    6: "the server no longer knows the handle",
    87: "the server refused a parameter of the call",
    122: "the answer did not fit the buffer",
    123: "the service name is not valid",
    1051: "other running services depend on it: stop them first",
    1052: "it does not accept this control",
    1053: "it did not answer its service manager in time",
    1054: "its process could not be created",
    1055: "the service database is locked (another program is changing services)",
    1056: "it is already running",
    1057: "its account name is not valid or does not exist",
    1058: "it is disabled and cannot be started: set its start type to Automatic or Manual",
    1059: "its dependencies form a cycle",
    1061: "it cannot accept controls now (it is starting or stopping): wait and try again",
    1062: "it is not running",
    1064: "it failed with an exception while handling the request",
    1068: "a service it depends on did not start",
    1069: "its account could not log on: check the service account's password and its "
    "'Log on as a service' right",
    1070: "it hung while starting",
    1072: "it is marked for deletion",
    1115: "the computer is shutting down",
}


class ServiceControlError(PeerError):
    """A node refused a service control call; ``code`` is the Windows error (or RPC fault)."""

    def __init__(self, message: str, *, code: int, service: str) -> None:
        """Keep the error code and the service beside the message."""
        super().__init__(message)
        self.code = code
        self.service = service


class ServiceNotFoundError(ServiceControlError):
    """The node has no service of that name (1060)."""


class ServiceAccessDeniedError(ServiceControlError):
    """The account jobsync logs on with may not do this to the node's services (5)."""


class ServiceControlUnsupportedError(ServiceControlError):
    """The node's server does not implement the call (Samba: changing a start type)."""


@dataclass(frozen=True)
class ServiceStatus:
    """A service's state as its node reports it (SERVICE_STATUS)."""

    service: str
    state: ServiceState
    exit_code: int  # why it stopped: a Windows error, or 1066 (see service_exit_code)
    service_exit_code: int
    checkpoint: int  # grows while a pending start or stop makes progress
    wait_hint_ms: int  # how long the service expects its pending operation to take


@dataclass(frozen=True)
class ServiceSettings:
    """How a service is configured (QUERY_SERVICE_CONFIGW)."""

    service: str
    display_name: str
    start_type: StartType
    account: str  # the start name: LocalSystem, NT AUTHORITY\\..., DOMAIN\\user, DOMAIN\\gmsa$
    binary_path: str


@final  # so a with block's value is one
class ServiceManager:
    """The service control manager of one node; a context manager that closes its handles."""

    def __init__(self, pipe: RpcPipe, config: PeerConfig) -> None:
        """Use a bound ``svcctl`` pipe; :meth:`open` makes one."""
        self._pipe = pipe
        self._config = config
        self._manager = b""
        self._handles: dict[str, tuple[bytes, int]] = {}  # per service: handle, its access

    @classmethod
    def open(cls, config: PeerConfig, *, timeout: float) -> ServiceManager:
        """Connect to the node of ``config`` and open its service manager; raises a PeerError."""
        pipe = RpcPipe.connect(
            config, pipe="svcctl", syntax=SVCCTL, timeout=timeout, pending_limit=CALL_LIMIT_SECONDS
        )
        manager = cls(pipe, config)
        try:
            stub = NdrWriter().unique_string(None).unique_string(None).u32(_SC_MANAGER_CONNECT)
            doing = "opening the service manager of"
            with manager._answer(_OPEN_MANAGER, stub, "", doing) as answer:
                handle, code = answer.handle(), answer.u32()
            manager._check(code, "", doing)
            manager._manager = handle
        except BaseException:
            manager.close()
            raise
        return manager

    def __enter__(self) -> ServiceManager:
        """Use it in a ``with`` block."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close every handle and the connection."""
        self.close()

    @property
    def protection(self) -> str:
        """The dialect and how messages are protected."""
        return self._pipe.protection

    # -- the calls ----------------------------------------------------------------------------

    def status(self, service: str) -> ServiceStatus:
        """The service's current state (RQueryServiceStatus)."""
        stub = NdrWriter().handle(self._open(service, _QUERY_STATUS_ACCESS, "querying"))
        with self._answer(_QUERY_STATUS, stub, service, "querying") as answer:
            status, code = _status(service, answer), answer.u32()
        self._check(code, service, "querying")
        return status

    def start(self, service: str) -> None:
        """Ask the service to start (RStartServiceW); one already running is no error."""
        handle = self._open(service, _START_ACCESS, "starting")
        stub = NdrWriter().handle(handle).u32(0).u32(0)  # no arguments
        with self._answer(_START, stub, service, "starting") as answer:
            code = answer.u32()
        if code != _ALREADY_RUNNING:
            self._check(code, service, "starting")

    def stop(self, service: str) -> None:
        """Ask the service to stop (RControlService); one not running is no error."""
        handle = self._open(service, _STOP_ACCESS, "stopping")
        stub = NdrWriter().handle(handle).u32(_SERVICE_CONTROL_STOP)
        with self._answer(_CONTROL, stub, service, "stopping") as answer:
            _status(service, answer)
            code = answer.u32()
        if code != _NOT_ACTIVE:
            self._check(code, service, "stopping")

    def set_start_type(self, service: str, start_type: StartType) -> None:
        """Change only the service's start type (RChangeServiceConfigW)."""
        doing = "changing the start type of"
        handle = self._open(service, _CHANGE_CONFIG_ACCESS, doing)
        stub = NdrWriter().handle(handle).u32(_NO_CHANGE).u32(_START_TYPES.index(start_type))
        stub.u32(_NO_CHANGE).u32(0).u32(0).u32(0)  # error control; path, group, tag: null
        stub.u32(0).u32(0).u32(0).u32(0).u32(0).u32(0)  # dependencies, account, password: null
        unsupported = (
            "changing a service's start type (MS-SCMR RChangeServiceConfigW); set "
            f"{service} to {_START_TYPE_WORDS[start_type]} by hand"
        )
        with self._answer(_CHANGE_CONFIG, stub, service, doing, unsupported=unsupported) as answer:
            if answer.pointer():  # the tag id: none was asked for, but a server may answer one
                answer.u32()
            code = answer.u32()
        self._check(code, service, doing)

    def config(self, service: str) -> ServiceSettings:
        """How the service is configured: display name, start type, account, program."""
        doing = "reading the settings of"
        handle = self._open(service, _QUERY_CONFIG_ACCESS, doing)
        size = 0
        for _ in range(2):  # ask with no room first: the answer says how much is needed
            stub = NdrWriter().handle(handle).u32(size)
            with self._answer(_QUERY_CONFIG, stub, service, doing) as answer:
                settings = _settings(service, answer)
                size, code = answer.u32(), answer.u32()
            if code != _INSUFFICIENT_BUFFER or not 0 < size <= _MAX_CONFIG_BUFFER:
                break
        self._check(code, service, doing)
        return settings

    def wait_for(
        self,
        service: str,
        state: ServiceState,
        *,
        timeout: float,
        interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> ServiceStatus:
        """Poll the service's status until it is ``state`` or ``timeout`` passed; the last one."""
        deadline = clock() + timeout
        while True:
            status = self.status(service)
            left = deadline - clock()
            if status.state == state or left <= 0:
                return status
            sleep(min(interval, left))

    def close(self) -> None:
        """Close every handle this manager opened, then the connection; safe to call twice."""
        handles = [h for h, _ in self._handles.values()]
        if self._manager:
            handles.append(self._manager)
        self._handles.clear()
        self._manager = b""
        for handle in handles:
            try:
                self._pipe.call(_CLOSE, NdrWriter().handle(handle).bytes())
            except PeerError:
                break  # the connection is gone, and every handle with it
        self._pipe.close()

    # -- handles and errors -------------------------------------------------------------------

    def _open(self, service: str, access: int, doing: str) -> bytes:
        """A handle on ``service`` with at least ``access``, kept for the manager's life."""
        key = service.casefold()
        held = self._handles.get(key)
        if held is not None and held[1] & access == access:
            return held[0]
        wanted = access | (held[1] if held else 0)
        stub = NdrWriter().handle(self._manager).string(service).u32(wanted)
        with self._answer(_OPEN_SERVICE, stub, service, doing) as answer:
            handle, code = answer.handle(), answer.u32()
        self._check(code, service, doing)
        self._handles[key] = (handle, wanted)
        if held is not None:  # replaced by one with more access
            with contextlib.suppress(RpcFaultError):
                self._pipe.call(_CLOSE, NdrWriter().handle(held[0]).bytes())
        return handle

    @contextlib.contextmanager
    def _answer(
        self, opnum: int, stub: NdrWriter, service: str, doing: str, *, unsupported: str = ""
    ) -> Iterator[NdrReader]:
        """Call ``opnum`` and read its answer; a FAULT or a malformed answer in words."""
        target = f"{doing} {service} on {self._pipe.host}" if service else f"{doing} the node"
        try:
            raw = self._pipe.call(opnum, stub.bytes())
        except RpcFaultError as exc:
            if exc.status == NCA_S_OP_RNG_ERROR:
                what = unsupported or f"MS-SCMR operation {opnum}"
                raise ServiceControlUnsupportedError(
                    f"peer {self._config.name}: the server {self._pipe.host} does not support "
                    f"{what}",
                    code=exc.status,
                    service=service,
                ) from exc
            raise ServiceControlError(
                f"peer {self._config.name}: {target}: {fault_words(exc.status)}",
                code=exc.status,
                service=service,
            ) from exc
        try:
            yield NdrReader(raw)
        except MalformedReplyError as exc:
            raise PeerUnreachableError(
                f"peer {self._config.name}: {target}: the server's answer is malformed ({exc})"
            ) from exc

    def _check(self, code: int, service: str, doing: str) -> None:
        """Raise the error ``code`` stands for, in words; nothing for success."""
        if code == 0:
            return
        peer, host = f"peer {self._config.name}", self._pipe.host
        target = f"{doing} {service} on {host}" if service else f"{doing} {host}"
        number = f"(Windows error {code})"
        if code == _ACCESS_DENIED:
            account = self._config.username or "the Windows account jobsync runs as"
            raise ServiceAccessDeniedError(
                f"{peer}: access denied {target} {number}: the account jobsync logs on with "
                f"({account}) is not a local administrator of {host}: remote service control "
                "needs one",
                code=code,
                service=service,
            )
        if code == _NO_SUCH_SERVICE:
            raise ServiceNotFoundError(
                f"{peer}: {host} has no service named {service!r} {number}: name a service by "
                "its short name (SERVICE_NAME in `sc query`), not its display name",
                code=code,
                service=service,
            )
        words = _ERROR_WORDS.get(code, "the call failed")
        raise ServiceControlError(f"{peer}: {target}: {words} {number}", code=code, service=service)


def _status(service: str, answer: NdrReader) -> ServiceStatus:
    """A SERVICE_STATUS from an answer."""
    _type, state, _accepted, exit_code, service_exit_code, checkpoint, wait_hint = (
        answer.u32() for _ in range(7)
    )
    if not 1 <= state <= len(_STATES):
        raise MalformedReplyError(f"service state {state} is not one Windows defines")
    return ServiceStatus(
        service=service,
        state=_STATES[state - 1],
        exit_code=exit_code,
        service_exit_code=service_exit_code,
        checkpoint=checkpoint,
        wait_hint_ms=wait_hint,
    )


def _settings(service: str, answer: NdrReader) -> ServiceSettings:
    """A QUERY_SERVICE_CONFIGW from an answer: fixed fields, then the strings pointed to."""
    _type, start_type, _error_control = answer.u32(), answer.u32(), answer.u32()
    if start_type >= len(_START_TYPES):
        raise MalformedReplyError(f"start type {start_type} is not one Windows defines")
    path, group = answer.pointer(), answer.pointer()
    answer.u32()  # tag id
    dependencies, account, display = answer.pointer(), answer.pointer(), answer.pointer()
    texts = [answer.string() if present else "" for present in (path, group, dependencies)]
    account_name = answer.string() if account else ""
    display_name = answer.string() if display else ""
    return ServiceSettings(
        service=service,
        display_name=display_name,
        start_type=_START_TYPES[start_type],
        account=account_name,
        binary_path=texts[0],
    )
