<#
.SYNOPSIS
  Installs, upgrades or removes jobsync from the unpacked Windows bundle, without internet.

.DESCRIPTION
  Creates a virtual environment from Python 3.10 to 3.13 (-Python, else the newest the py
  launcher knows), installs the bundle's wheels into it (pip --no-index, every file checked
  against its SHA-256), writes the config from the example when there is none, and optionally
  installs the service (-Service) and the fallback task (-Task), after `jobsync init` (which
  records which machine this node is and, on the services node only, makes it the owner of
  the jobs; -ServicesNode says this is the services node when [active] cannot tell yet).
  -Upgrade stops the service and
  the task, installs this version, and starts them again. -Uninstall removes the service, the
  task and the virtual environment, and keeps the config, state and logs. The steps themselves
  are jobsync commands; see docs\windows.md.

.EXAMPLE
  .\install.ps1
  .\install.ps1 -Service -WinSW C:\Downloads\WinSW-x64.exe -WinSWSha256 <hash> -Task
  .\install.ps1 -Service -Task -ServicesNode
  .\install.ps1 -Upgrade
  .\install.ps1 -Uninstall
#>
param(
    [string]$Python,
    [string]$Target = (Join-Path $env:ProgramFiles "jobsync"),
    [string]$Config = (Join-Path $env:ProgramData "jobsync\jobsync.toml"),
    [switch]$Service,
    [string]$WinSW,
    [string]$WinSWSha256,
    [switch]$Task,
    [switch]$ServicesNode,
    [switch]$Upgrade,
    [switch]$Uninstall
)
$ErrorActionPreference = "Stop"
$venv = Join-Path $Target ".venv"
$py = Join-Path $venv "Scripts\python.exe"

function Step([string]$exe, [string[]]$arguments) {
    & $exe @arguments
    if ($LASTEXITCODE -ne 0) { throw "$exe $($arguments -join ' ') failed (exit $LASTEXITCODE)." }
}
function Jobsync([string[]]$arguments) { Step $py (@("-m", "jobsync") + $arguments + @("-c", $Config)) }

$me = [Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()
if (-not $me.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    throw "Run this script as Administrator."
}
if (($Upgrade -or $Uninstall) -and -not (Test-Path $py)) {
    throw "No jobsync in $venv: install it first (install.ps1 without -Upgrade or -Uninstall)."
}
if ($Uninstall) {
    Jobsync @("service", "uninstall")
    Jobsync @("schedule", "uninstall")
    Remove-Item -Recurse -Force $venv
    if (-not (Get-ChildItem $Target)) { Remove-Item $Target }
    Write-Output "jobsync removed; $(Split-Path $Config) keeps the config, state and logs."
    return
}
if ($Upgrade) { Jobsync @("deploy", "stop") }
elseif (-not (Test-Path $py)) {
    foreach ($version in "3.13", "3.12", "3.11", "3.10") {
        if ($Python) { break }
        try { $Python = & py "-$version" -c "import sys; print(sys.executable)" 2>$null } catch { }
        if ($LASTEXITCODE -ne 0) { $Python = $null }
    }
    if (-not $Python) { throw "No Python 3.10 to 3.13 found: install one (docs\windows.md) or pass -Python." }
    # The service's account must be able to run it, and the wheels are 64-bit.
    $bits = & $Python -c "import struct; print(struct.calcsize('P') * 8)"
    if ($bits -ne "64") { throw "$Python is a $bits-bit Python: install the 64-bit one (docs\windows.md)." }
    $profiles = Split-Path $env:PUBLIC
    if ($Python.StartsWith($profiles, [StringComparison]::OrdinalIgnoreCase)) {
        throw "$Python is installed for one user only, where the service's account cannot run it: install Python for all users (InstallAllUsers=1, docs\windows.md)."
    }
    Step $Python @("-m", "venv", $venv)
}
$tag = & $py -c "import sys; print('%d%d' % sys.version_info[:2])"
$locked = Join-Path $PSScriptRoot "requirements\windows-py$tag.txt"
if (-not (Test-Path $locked)) { throw "This bundle has no wheels for Python $tag; it serves 3.10 to 3.13." }
try {
    Step $py @("-m", "pip", "install", "--no-index", "--find-links", (Join-Path $PSScriptRoot "wheels"),
        "--require-hashes", "--upgrade", "-r", $locked, "-r", (Join-Path $PSScriptRoot "requirements\jobsync.txt"))
} catch {
    if ($Upgrade) { Write-Warning "jobsync is stopped on this node: fix the problem and run -Upgrade again." }
    throw
}
if (-not (Test-Path $Config)) {
    New-Item -ItemType Directory -Force (Split-Path $Config) | Out-Null
    Copy-Item (Join-Path $PSScriptRoot "docs\jobsync.example.toml") $Config
    Write-Output "Wrote $Config from the example: edit it, then run jobsync check (docs\windows.md)."
}
if ($Upgrade) { Jobsync @("deploy", "start") }
if ($Service -or $Task) {
    # Every node: who it is. The services node alone: the owner of the jobs (epoch 1).
    $initArguments = @("init")
    if ($ServicesNode) { $initArguments += "--as-services-node" }
    Jobsync $initArguments
}
if ($Service) {
    $bundled = Join-Path $PSScriptRoot "WinSW-x64.exe"   # when the bundle was built with --winsw
    if (-not $WinSW -and (Test-Path $bundled)) {
        $WinSW = $bundled
        $WinSWSha256 = (Get-Content "$bundled.sha256").Trim()
    }
    $winswArguments = @()
    if ($WinSW) { $winswArguments = @("--winsw", $WinSW, "--winsw-sha256", $WinSWSha256) }
    Jobsync (@("service", "install") + $winswArguments)
}
if ($Task) { Jobsync @("schedule", "install") }
Step $py @("-m", "jobsync", "version")
