<#
.SYNOPSIS
  Registers the scheduled-task fallback that runs `jobsync push` every few minutes.

.DESCRIPTION
  The task definition comes from `jobsync schedule xml`. Its principal can reach the network:
  a gMSA (no password anywhere), a domain account whose password you type here and Task
  Scheduler stores, or SYSTEM acting as the computer account. Never "do not store password"
  (S4U): such a task cannot reach the peers. Remove it with Unregister-ScheduledTask.
#>
param(
    [string]$Config = "$env:ProgramData\jobsync\jobsync.toml",
    [string]$Python = (Join-Path $PSScriptRoot "..\.venv\Scripts\python.exe")
)
$ErrorActionPreference = "Stop"

$me = [Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()
if (-not $me.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    throw "Run this script as Administrator."
}
$Config = (Resolve-Path $Config).Path
$text = (& $Python -m jobsync schedule xml --config $Config) -join "`n"
if ($LASTEXITCODE -ne 0) { throw "jobsync schedule xml failed (exit $LASTEXITCODE)." }
[xml]$task = $text
$name = $task.Task.RegistrationInfo.URI.TrimStart('\')
$user = $task.Task.Principals.Principal.UserId
$logon = $task.Task.Principals.Principal.LogonType

if ($logon -eq "Password" -and -not $user.EndsWith('$')) {
    $credential = Get-Credential -UserName $user -Message "Password of $user for the jobsync task"
    Register-ScheduledTask -TaskName $name -Xml $text -User $user `
        -Password $credential.GetNetworkCredential().Password -Force | Out-Null
} else {
    Register-ScheduledTask -TaskName $name -Xml $text -Force | Out-Null
}
Get-ScheduledTask -TaskName $name
