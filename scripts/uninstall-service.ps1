<#
.SYNOPSIS
  Stops and removes the jobsync service. The config, logs and state stay where they are.
#>
param([string]$Config = "$env:ProgramData\jobsync\jobsync.toml")
$ErrorActionPreference = "Stop"

$me = [Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()
if (-not $me.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    throw "Run this script as Administrator."
}
$home_ = Split-Path -Parent (Resolve-Path $Config).Path
$exe = Join-Path $home_ "jobsync-service.exe"
if (-not (Test-Path $exe)) { throw "No jobsync service executable at $exe." }
& $exe stop
& $exe uninstall
if ($LASTEXITCODE -ne 0) { throw "WinSW uninstall failed (exit $LASTEXITCODE)." }
Remove-Item $exe, (Join-Path $home_ "jobsync-service.xml")
Write-Output "jobsync service removed; $home_ keeps the config, logs and state."
