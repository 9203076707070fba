"""The WinSW definition of the agent's Windows service (``jobsync service xml``).

WinSW runs ``python -m jobsync watch`` as a service, sends Ctrl+C on stop and kills after
``stoptimeout``, restarts it on failure (10 s, 60 s, 5 min) and rolls its logs. The account is
named here; a password never is: the install script hands it to the service manager.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from jobsync.config import Config
from jobsync.windows import config_argument, python_executable

RESTART_DELAYS = ("10 sec", "60 sec", "5 min")
LOG_SIZE_KB = 10_240
LOG_FILES_KEPT = 8


def service_xml(config: Config) -> str:
    """Render the WinSW XML for this config."""
    service = config.service
    home = Path(config.path).resolve().parent
    root = ET.Element("service")
    for tag, text in (
        ("id", service.id),
        ("name", service.name),
        ("description", service.description),
        ("executable", python_executable(config)),
        ("arguments", f"-m jobsync watch {config_argument(config)}"),
        ("workingdirectory", str(home)),
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
    if service.account and service.account != "LocalSystem":
        account = ET.SubElement(root, "serviceaccount")
        ET.SubElement(account, "username").text = service.account
        ET.SubElement(account, "allowservicelogon").text = "true"
        # Never a <password>: a gMSA has none (WinSW wants the element left out), and an
        # ordinary account's password goes straight to the service manager at install time.
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
