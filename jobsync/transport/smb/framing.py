"""What wraps an SMB message: TCP frames, signing and encryption, the session.

SMB2 over TCP: length-prefixed frames on a non-blocking socket (MS-SMB2 2.1).

SMB3 encryption and SMB2/3 signing of whole messages, with the session's keys.
The keys come from the logon (see :mod:`jobsync.transport.smb.channel`); this module only
applies them. Cipher objects are built once per session, not once per message.

What the channel knows of a logged-on session and its share, and what it hands back.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import select
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import aead, algorithms
from cryptography.hazmat.primitives.cmac import CMAC

from jobsync.transport.smb import statuses

_READ_SIZE = 1 << 18
_PREFIX = 4  # a zero byte and a 24-bit length before each message


class ChannelClosedError(ConnectionError):
    """The server closed the connection, or it was cut."""


class FrameSocket:
    """Sends whole frames and collects the frames that arrive; waits are bounded by select."""

    def __init__(self, sock: socket.socket, *, timeout: float) -> None:
        """Use ``sock``, switched to non-blocking; a send blocked ``timeout`` s is a timeout."""
        sock.setblocking(False)  # noqa: FBT003 - the stdlib's own signature
        self._sock = sock
        self._timeout = timeout
        self._inbox = bytearray()

    def send(self, data: bytes) -> None:
        """Send one frame; while the server is not reading, take in what it sends meanwhile.

        (So neither side waits for the other with full buffers.)
        """
        frame = memoryview(len(data).to_bytes(_PREFIX, "big") + data)
        while frame:
            try:
                sent = self._sock.send(frame)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                raise ChannelClosedError(f"connection lost: {exc}") from exc
            frame = frame[sent:]
            if frame:
                readable, writable, _ = select.select([self._sock], [self._sock], [], self._timeout)
                if not readable and not writable:
                    raise TimeoutError("no answer from the server")
                if readable:
                    self.fill()

    def fill(self) -> bool:
        """Read what has arrived; returns False when nothing had."""
        try:
            data = self._sock.recv(_READ_SIZE)
        except BlockingIOError:
            return False
        except OSError as exc:
            raise ChannelClosedError(f"connection lost: {exc}") from exc
        if not data:
            raise ChannelClosedError("the server closed the connection")
        self._inbox += data
        return True

    def readable(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for something to read; whether it came."""
        readable, _, _ = select.select([self._sock], [], [], timeout)
        return bool(readable)

    def frames(self) -> Iterator[bytes]:
        """Every whole frame received so far, oldest first, removed from the inbox."""
        inbox = self._inbox
        while len(inbox) >= _PREFIX:
            size = int.from_bytes(inbox[1:_PREFIX], "big")
            if len(inbox) < _PREFIX + size:
                return
            frame = bytes(inbox[_PREFIX : _PREFIX + size])
            del inbox[: _PREFIX + size]
            yield frame


# MS-SMB2 2.2.3.1.2 cipher ids and 2.2.3.1.7 signing algorithm ids
AES_128_CCM, AES_128_GCM, AES_256_CCM, AES_256_GCM = 1, 2, 3, 4
HMAC_SHA256, AES_CMAC, AES_GMAC = 0, 1, 2
CIPHER_NAMES: Final = {
    AES_128_CCM: "AES-128-CCM",
    AES_128_GCM: "AES-128-GCM",
    AES_256_CCM: "AES-256-CCM",
    AES_256_GCM: "AES-256-GCM",
}
SIGNING_NAMES: Final = {HMAC_SHA256: "HMAC-SHA256", AES_CMAC: "AES-CMAC", AES_GMAC: "AES-GMAC"}

TRANSFORM_PROTOCOL: Final = b"\xfdSMB"
_TRANSFORM = struct.Struct("<4s16s16sIHHQ")  # MS-SMB2 2.2.41, 52 bytes
_AAD_START = 20  # the transform header from the nonce on is authenticated, not encrypted
_SIGNATURE = slice(48, 64)
_FLAG_SIGNED = 0x8
_FLAG_RESPONSE = 0x1


class IntegrityError(Exception):
    """A message failed its signature or decryption check: the connection cannot be trusted."""


class Sealer:
    """Encrypts requests and decrypts responses of one session (MS-SMB2 3.1.4.3)."""

    def __init__(
        self, cipher_id: int, *, session_id: int, encrypt_key: bytes, decrypt_key: bytes
    ) -> None:
        """Build the cipher objects for this session's two keys."""
        self.name = CIPHER_NAMES.get(cipher_id, f"cipher {cipher_id}")
        gcm = cipher_id in (AES_128_GCM, AES_256_GCM)
        cipher = aead.AESGCM if gcm else aead.AESCCM
        self._nonce_size = 12 if gcm else 11
        self._encrypt = cipher(encrypt_key).encrypt
        self._decrypt = cipher(decrypt_key).decrypt
        self._session_id = session_id

    def seal(self, message: bytes) -> bytes:
        """The transform message carrying ``message`` encrypted."""
        nonce = os.urandom(self._nonce_size)
        header = _TRANSFORM.pack(
            TRANSFORM_PROTOCOL,
            b"",
            nonce,
            len(message),
            0,
            1,  # Flags: encrypted
            self._session_id,
        )
        sealed = self._encrypt(nonce, message, header[_AAD_START:])
        return header[:4] + sealed[-16:] + header[_AAD_START:] + sealed[:-16]

    def open(self, frame: bytes) -> bytes:
        """The message inside a transform message; raises :class:`IntegrityError` if forged."""
        if len(frame) < _TRANSFORM.size:
            raise IntegrityError("encrypted message too short")
        _, tag, nonce, size, _, flags, session_id = _TRANSFORM.unpack_from(frame)
        if flags != 1 or session_id != self._session_id:
            raise IntegrityError("encrypted message for another session")
        try:
            message = self._decrypt(
                nonce[: self._nonce_size],
                frame[_TRANSFORM.size :] + tag,
                frame[_AAD_START : _TRANSFORM.size],
            )
        except InvalidTag:
            raise IntegrityError("encrypted message failed its integrity check") from None
        if len(message) != size:
            raise IntegrityError("encrypted message has the wrong length")
        return message


class Signer:
    """Signs requests and checks responses of one session (MS-SMB2 3.1.4.1)."""

    def __init__(self, algorithm: int, key: bytes) -> None:
        """Prepare the signing algorithm the session negotiated."""
        self.name = SIGNING_NAMES.get(algorithm, f"algorithm {algorithm}")
        self._algorithm = algorithm
        self._key = key
        self._gmac = aead.AESGCM(key).encrypt if algorithm == AES_GMAC else None

    def sign(self, message: bytearray) -> None:
        """Set the SIGNED flag and the signature of one request, in place."""
        flags = struct.unpack_from("<I", message, 16)[0] | _FLAG_SIGNED
        struct.pack_into("<I", message, 16, flags)
        message[_SIGNATURE] = bytes(16)
        message[_SIGNATURE] = self._signature(bytes(message), response=False)

    def verify(self, message: bytes) -> None:
        """Raise :class:`IntegrityError` unless ``message`` carries a valid signature."""
        flags = struct.unpack_from("<I", message, 16)[0]
        if not flags & _FLAG_SIGNED:
            raise IntegrityError("unsigned response on a session that requires signing")
        unsigned = message[:48] + bytes(16) + message[64:]
        if not hmac.compare_digest(message[_SIGNATURE], self._signature(unsigned, response=True)):
            raise IntegrityError("response signature does not match")

    def _signature(self, message: bytes, *, response: bool) -> bytes:
        if self._gmac is not None:
            message_id = struct.unpack_from("<Q", message, 24)[0]
            nonce = struct.pack("<QI", message_id, _FLAG_RESPONSE if response else 0)
            return self._gmac(nonce, b"", message)
        if self._algorithm == AES_CMAC:
            mac = CMAC(algorithms.AES(self._key))
            mac.update(message)
            return mac.finalize()
        return hmac.new(self._key, message, hashlib.sha256).digest()[:16]


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to one request: its NT status and its body (after the 64-byte header)."""

    status: int
    body: bytes = b""

    @property
    def ok(self) -> bool:
        """Whether the server carried the request out."""
        return self.status == statuses.STATUS_SUCCESS


@dataclass(frozen=True)
class Limits:
    """The largest payloads the server accepts (its NEGOTIATE response, MS-SMB2 2.2.4)."""

    max_transact: int = 8 << 20
    max_read: int = 8 << 20
    max_write: int = 8 << 20


@dataclass(frozen=True)
class Session:
    """What the channel needs to know about a logged-on session and its share."""

    session_id: int
    tree_id: int
    dialect: int
    sealer: Sealer | None
    signer: Signer | None
    dfs: bool
    multi_credit: bool
    limits: Limits = field(default_factory=Limits)

    def describe(self) -> str:
        """The dialect and protection, e.g. "SMB 3.1.1, encrypted with AES-128-GCM"."""
        dialect = f"SMB {self.dialect >> 8}.{(self.dialect >> 4) & 0xF}.{self.dialect & 0xF}"
        dialect = dialect.removesuffix(".0")
        if self.sealer is not None:
            return f"{dialect}, encrypted with {self.sealer.name}"
        if self.signer is not None:
            return f"{dialect}, signed with {self.signer.name}"
        return f"{dialect}, neither signed nor encrypted"
