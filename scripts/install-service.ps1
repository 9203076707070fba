<#
.SYNOPSIS
  Installs the jobsync agent (jobsync watch) as a Windows service through WinSW.

.DESCRIPTION
  Takes (or downloads) the WinSW executable and refuses it unless its SHA-256 is the one you
  give; writes the service definition rendered by `jobsync service xml`; installs the service;
  sets its recovery actions; starts it. For a domain account that is not a gMSA it asks for the
  password and hands it to the service manager: it is never written to a file.

.EXAMPLE
  .\install-service.ps1 -WinSW C:\Downloads\WinSW-x64.exe -WinSWSha256 <hash from the release page>
#>
param(
    [string]$Config = "$env:ProgramData\jobsync\jobsync.toml",
    [string]$Python = (Join-Path $PSScriptRoot "..\.venv\Scripts\python.exe"),
    [string]$WinSW,
    [string]$WinSWUrl = "https://github.com/winsw/winsw/releases/download/v2.12.0/WinSW-x64.exe",
    [Parameter(Mandatory = $true)][string]$WinSWSha256
)
$ErrorActionPreference = "Stop"

$me = [Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()
if (-not $me.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    throw "Run this script as Administrator."
}
$Config = (Resolve-Path $Config).Path
$home_ = Split-Path -Parent $Config
$exe = Join-Path $home_ "jobsync-service.exe"   # WinSW reads the XML with the same base name
$xml = Join-Path $home_ "jobsync-service.xml"

if ($WinSW) { Copy-Item $WinSW $exe -Force }
else { Invoke-WebRequest -Uri $WinSWUrl -OutFile $exe -UseBasicParsing }
$actual = (Get-FileHash -Algorithm SHA256 $exe).Hash
if ($actual -ne $WinSWSha256.ToUpperInvariant()) {
    Remove-Item $exe
    throw "WinSW SHA-256 is $actual, not $WinSWSha256: refusing to install it."
}

& $Python -m jobsync service xml --config $Config | Set-Content -Encoding UTF8 $xml
if ($LASTEXITCODE -ne 0) { throw "jobsync service xml failed (exit $LASTEXITCODE)." }
[xml]$definition = Get-Content -Raw $xml
$id = $definition.service.id
$account = $definition.service.serviceaccount.username
$needsPassword = $account -and -not $account.EndsWith('$') -and $account -ne "LocalSystem"
if ($needsPassword) {
    # WinSW would want the password in its file; the service manager gets it from us instead.
    [void]$definition.service.RemoveChild($definition.service.serviceaccount)
    $definition.Save($xml)
}

& $exe install
if ($LASTEXITCODE -ne 0) { throw "WinSW install failed (exit $LASTEXITCODE)." }
if ($needsPassword) {
    $credential = Get-Credential -UserName $account -Message "Password of $account for the jobsync service"
    $service = Get-CimInstance Win32_Service -Filter "Name='$id'"
    $answer = Invoke-CimMethod -InputObject $service -MethodName Change -Arguments @{
        StartName     = $account
        StartPassword = $credential.GetNetworkCredential().Password
    }
    if ($answer.ReturnValue -ne 0) { throw "Setting the service account failed (code $($answer.ReturnValue))." }
}
sc.exe failure $id reset= 86400 actions= restart/10000/restart/60000/restart/300000 | Out-Null
sc.exe failureflag $id 1 | Out-Null
Start-Service $id
Get-Service $id
