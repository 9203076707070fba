"""The WinSW definition of the agent's Windows service (``jobsync service xml``).

WinSW runs ``python -I -m jobsync watch`` as a service, in the interpreter's own folder (see
:data:`jobsync.windows.ISOLATED`), sends Ctrl+C on stop and kills after ``stoptimeout``,
restarts it on failure (10 s, 60 s, 5 min) and rolls its logs. The account is
not in the file: ``jobsync service install`` gives it to the service manager (with ``sc.exe`` for
a gMSA, through WinSW's own prompt for an account with a password), so no password is ever
written anywhere, and the file is the same whichever WinSW release reads it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from jobsync.config import Config
from jobsync.windows import (
    config_argument,
    config_home,
    interpreter_folder,
    module_command,
    python_executable,
)

RESTART_DELAYS = ("10 sec", "60 sec", "5 min")
LOG_SIZE_KB = 10_240
LOG_FILES_KEPT = 8


def service_xml(config: Config) -> str:
    """Render the WinSW XML for this config."""
    service = config.service
    home = config_home(config)
    root = ET.Element("service")
    for tag, text in (
        ("id", service.id),
        ("name", service.name),
        ("description", service.description),
        ("executable", python_executable(config)),
        ("arguments", module_command("jobsync", "watch", config_argument(config))),
        ("workingdirectory", interpreter_folder(config)),
        ("stoptimeout", f"{service.stop_timeout_seconds:g} sec"),
        ("startmode", "Automatic"),
    ):
        ET.SubElement(root, tag).text = text
    for delay in RESTART_DELAYS:
        ET.SubElement(root, "onfailure", action="restart", delay=delay)
    ET.SubElement(root, "resetfailure").text = "1 day"
    ET.SubElement(root, "logpath").text = str(service.log_dir or home / "logs")
    log = ET.SubElement(root, "log", mode="roll-by-size")
    ET.SubElement(log, "sizeThreshold").text = str(LOG_SIZE_KB)
    ET.SubElement(log, "keepFiles").text = str(LOG_FILES_KEPT)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
