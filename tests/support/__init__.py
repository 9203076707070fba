"""What the tests share: throwaway servers, clusters, agents and waiting, one module a subject.

- ``smbd``: throwaway Samba servers on loopback; ``domain_controller``: a Samba AD DC;
- ``cluster``: a source folder, a config file and peers, and running jobsync on them;
- ``agent``: the agent as a real process or in a thread; ``polling``: waiting with a deadline;
- ``failover_bed``: three Windows-like nodes for ``jobsync failover``; ``as_machine``: jobsync
  as one machine of a fleet runs it (a script); ``holder``: a second SMB client holding a file
  (a script too); ``tcp_proxy``: a proxy that cuts or stalls connections; ``ports``: free ports;
- ``browser``: headless Chromium; ``page_text``: an HTML page's words;
- ``windows_fake``: a runner answering as Windows' tools would; ``locks``: the lock files' pins.

The package is named so that it shadows nothing: Samba's own Python module is ``samba``.
"""
