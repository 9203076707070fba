#Requires -Version 5.1
#Requires -RunAsAdministrator
<#
.SYNOPSIS
  Installs, upgrades, rolls back or removes jobsync from the unpacked Windows bundle, offline.

.DESCRIPTION
  Each version of jobsync lives in a virtual environment of its own, side by side in -Target
  (venv-<version>); current.txt names the one in use and previous.txt the one before it, and
  jobsync.cmd beside them runs the current one.

  Install: creates the virtual environment from a 64-bit Python 3.10 to 3.13 installed for all
  users (-Python, else the newest the py launcher knows), installs the bundle's wheels into it
  (pip --no-index, every file checked against its SHA-256), and writes the config from the
  example when there is none. -Service and -Task then install the service and the fallback
  task, after `jobsync init` (which records which machine this node is and, on the services
  node only, makes it the owner of the jobs; -ServicesNode says this is the services node
  when [active] cannot tell yet). Those two refuse to install anything until `jobsync check`
  passes with the edited config.

  -Upgrade: builds the new version beside the running one and checks it (`jobsync check`)
  before anything is stopped; only then stops the service and the task, switches, and starts
  exactly what was running. The previous version is kept: -Rollback goes back to it.

  -Uninstall: removes the service, the task and every virtual environment; the config, state
  and logs stay. Every run appends what it did to install.log in -Target.

  Safe to run again after any failure: each step either leaves the running version untouched
  or is finished by the next run. The steps themselves are jobsync commands; see
  docs\windows.md.

.EXAMPLE
  .\install.ps1
  .\install.ps1 -Service -Task -WinSW C:\Downloads\WinSW-x64.exe -WinSWSha256 <hash>
  .\install.ps1 -Service -Task -ServicesNode
  .\install.ps1 -Upgrade
  .\install.ps1 -Rollback
  .\install.ps1 -Uninstall
#>
[CmdletBinding(SupportsShouldProcess)]
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
    [switch]$Rollback,
    [switch]$Uninstall
)
$ErrorActionPreference = "Stop"
$script:Cmdlet = $PSCmdlet
$currentFile = Join-Path $Target "current.txt"
$previousFile = Join-Path $Target "previous.txt"
$pin = Get-Content (Join-Path $PSScriptRoot "requirements\jobsync.txt") -TotalCount 1
$version = ([regex]::Match($pin, '^jobsync==(\S+)')).Groups[1].Value
if (-not $version) { throw "requirements\jobsync.txt names no jobsync version: is this an unpacked jobsync bundle?" }

function Invoke-Step([string]$exe, [string[]]$arguments) {
    if (-not $script:Cmdlet.ShouldProcess("$exe $($arguments -join ' ')", "Run")) { return }
    & $exe @arguments
    if ($LASTEXITCODE -ne 0) { throw "$exe $($arguments -join ' ') failed (exit $LASTEXITCODE)." }
}
function Get-VenvPython([string]$venv) { Join-Path $venv "Scripts\python.exe" }
function Invoke-JobsyncIn([string]$venv, [string[]]$arguments) {
    # -I: nothing from the working directory or PYTHON* variables reaches the import path.
    Invoke-Step (Get-VenvPython $venv) (@("-I", "-m", "jobsync") + $arguments + @("-c", $Config))
}
function Show-Version([string]$venv) { Invoke-Step (Get-VenvPython $venv) @("-I", "-m", "jobsync", "version") }
function Get-Venv([string]$file) {
    if (-not (Test-Path $file)) { return $null }
    $venv = Join-Path $Target ((Get-Content $file -TotalCount 1).Trim())
    if (Test-Path (Get-VenvPython $venv)) { return $venv }
    return $null
}
function Set-Current([string]$venv, [string]$previous) {
    if (-not $script:Cmdlet.ShouldProcess($Target, "Make $(Split-Path $venv -Leaf) the current version")) { return }
    Set-Content -Path $currentFile -Value (Split-Path $venv -Leaf) -Encoding ASCII
    if ($previous) { Set-Content -Path $previousFile -Value (Split-Path $previous -Leaf) -Encoding ASCII }
    $shim = "@`"%~dp0$(Split-Path $venv -Leaf)\Scripts\python.exe`" -I -m jobsync %*"
    Set-Content -Path (Join-Path $Target "jobsync.cmd") -Value $shim -Encoding ASCII
}
function Find-Python {
    $found = $Python
    foreach ($candidate in "3.13", "3.12", "3.11", "3.10") {
        if ($found) { break }
        try { $found = & py "-$candidate" -c "import sys; print(sys.executable)" 2>$null } catch { }
        if ($LASTEXITCODE -ne 0) { $found = $null }
    }
    if (-not $found) { throw "No Python 3.10 to 3.13 found: install one (docs\windows.md) or pass -Python." }
    # The service's account must be able to run it, and the wheels are 64-bit.
    $bits = & $found -c "import struct; print(struct.calcsize('P') * 8)"
    if ($bits -ne "64") { throw "$found is a $bits-bit Python: install the 64-bit one (docs\windows.md)." }
    if ($found.StartsWith((Split-Path $env:PUBLIC), [StringComparison]::OrdinalIgnoreCase)) {
        throw "$found is installed for one user only, where the service's account cannot run it: install Python for all users (InstallAllUsers=1, docs\windows.md)."
    }
    return $found
}
function New-Venv([string]$base) {
    # This version's environment, made afresh: what a failed earlier attempt left is removed.
    $venv = Join-Path $Target "venv-$version"
    if (Test-Path $venv) { Remove-Item -Recurse -Force $venv }
    # Out-Host: what the tools print is shown, never taken for this function's answer.
    Invoke-Step $base @("-m", "venv", $venv) | Out-Host
    $py = Get-VenvPython $venv
    try {
        $tag = & $py -c "import sys; print('%d%d' % sys.version_info[:2])"
        $locked = Join-Path $PSScriptRoot "requirements\windows-py$tag.txt"
        if (-not (Test-Path $locked)) { throw "This bundle has no wheels for Python $($tag.Insert(1, '.')); it serves 3.10 to 3.13." }
        Invoke-Step $py @("-m", "pip", "install", "--no-index", "--find-links", (Join-Path $PSScriptRoot "wheels"),
            "--require-hashes", "-r", $locked, "-r", (Join-Path $PSScriptRoot "requirements\jobsync.txt")) | Out-Host
    } catch {
        Remove-Item -Recurse -Force $venv -ErrorAction SilentlyContinue
        throw
    }
    return $venv
}
function Stop-Version([string]$running, [string]$fallback) {
    # The running version stops itself; if its environment is broken, the other one can.
    try { Invoke-JobsyncIn $running @("deploy", "stop") }
    catch {
        if (-not $fallback) { throw }
        Write-Warning "$(Split-Path $running -Leaf) could not stop itself ($_); stopping with $(Split-Path $fallback -Leaf)."
        Invoke-JobsyncIn $fallback @("deploy", "stop")
    }
}
function Remove-OldVenvs([string[]]$keep) {
    Get-ChildItem $Target -Directory | Where-Object { ($_.Name -like "venv-*" -or $_.Name -eq ".venv") -and $keep -notcontains $_.FullName } |
        ForEach-Object { if ($script:Cmdlet.ShouldProcess($_.FullName, "Remove")) { Remove-Item -Recurse -Force $_.FullName } }
}

if ($WhatIfPreference) {
    # The steps depend on what each one finds (a failed build is removed, a check may refuse),
    # so -WhatIf says what this run would do, in order, and changes nothing.
    $mode = if ($Uninstall) { "remove the service, the task and every version in $Target (the config, state and logs stay)" }
        elseif ($Rollback) { "stop the current version, make the one in previous.txt current and start it" }
        elseif ($Upgrade) { "build jobsync $version in $Target\venv-$version, run its jobsync check, then stop the running version, switch and start exactly what ran" }
        else { "install jobsync $version in $Target\venv-$version unless it is there; write $Config from the example if missing" }
    Write-Output "What if: $mode."
    if ($Service -or $Task) { Write-Output "What if: jobsync init, then $(@(if ($Service) { 'service install' }; if ($Task) { 'schedule install' }) -join ' and '), each refused until jobsync check passes." }
    return
}
New-Item -ItemType Directory -Force $Target | Out-Null
Start-Transcript -Append -Path (Join-Path $Target "install.log") | Out-Null
try {
    $current = Get-Venv $currentFile
    $legacy = Join-Path $Target ".venv"   # jobsync 0.2 kept one environment there
    if (-not $current -and (Test-Path (Get-VenvPython $legacy))) { $current = $legacy }
    if ($WinSW -and -not $WinSWSha256) { throw "-WinSW needs -WinSWSha256, the SHA-256 from WinSW's release page." }

    if ($Uninstall) {
        $failed = @()
        if ($current) {
            foreach ($step in @(@("service", "uninstall"), @("schedule", "uninstall"))) {
                try { Invoke-JobsyncIn $current $step } catch { $failed += "$_" }
            }
        }
        Remove-OldVenvs @()
        foreach ($file in $currentFile, $previousFile, (Join-Path $Target "jobsync.cmd")) { Remove-Item $file -ErrorAction SilentlyContinue }
        if ($failed) { throw "jobsync removed except: $($failed -join '; '). Run -Uninstall again once that is fixed." }
        Write-Output "jobsync removed; $(Split-Path $Config) keeps the config, state and logs."
        return
    }
    if ($Rollback) {
        $previous = Get-Venv $previousFile
        if (-not $current -or -not $previous) { throw "No previous version is kept in $Target`: nothing to roll back to." }
        Stop-Version $current $previous
        Set-Current $previous $current
        Invoke-JobsyncIn $previous @("deploy", "start")
        Show-Version $previous
        return
    }
    if ($Upgrade) {
        if (-not $current) { throw "No jobsync in $Target`: install it first (install.ps1 without -Upgrade)." }
        $new = Join-Path $Target "venv-$version"
        if ($current -ne $new) {
            # Built and checked beside the running version: nothing is stopped until it passes.
            $new = New-Venv (Find-Python)
            try { Invoke-JobsyncIn $new @("check") }
            catch {
                Remove-Item -Recurse -Force $new -ErrorAction SilentlyContinue
                throw "jobsync $version was not switched to, nothing was stopped: its jobsync check fails ($_). Fix that, then run -Upgrade again."
            }
            Stop-Version $current $new
            Set-Current $new $current
        }
        try { Invoke-JobsyncIn $new @("deploy", "start") }
        catch {
            if ($current -eq $new) { throw }
            Write-Warning "jobsync $version could not start ($_): going back to $(Split-Path $current -Leaf)."
            Set-Current $current $null
            Invoke-JobsyncIn $current @("deploy", "start")
            throw "jobsync $version did not start; the node runs $(Split-Path $current -Leaf) again."
        }
        Remove-OldVenvs @($new, $current)
        Show-Version $new
        return
    }

    if (-not $current) {
        $current = New-Venv (Find-Python)
        Set-Current $current $null
    } elseif ($current -ne (Join-Path $Target "venv-$version")) {
        $installed = & (Get-VenvPython $current) -I -m jobsync version
        throw "$installed is installed and this bundle is jobsync $version`: run install.ps1 -Upgrade."
    }
    if (-not (Test-Path $Config)) {
        New-Item -ItemType Directory -Force (Split-Path $Config) | Out-Null
        Copy-Item (Join-Path $PSScriptRoot "docs\jobsync.example.toml") $Config
        Write-Output "Wrote $Config from the example: edit it, then run jobsync check (docs\windows.md)."
    }
    if ($Service -or $Task) {
        # Every node: who it is. The services node alone: the owner of the jobs (epoch 1).
        $initArguments = @("init")
        if ($ServicesNode) { $initArguments += "--as-services-node" }
        Invoke-JobsyncIn $current $initArguments
    }
    if ($Service) {
        $bundled = Join-Path $PSScriptRoot "WinSW-x64.exe"   # when the bundle was built with --winsw
        if (-not $WinSW -and (Test-Path $bundled)) {
            $WinSW = $bundled
            $WinSWSha256 = (Get-Content "$bundled.sha256").Trim()
        }
        $winswArguments = @()
        if ($WinSW) { $winswArguments = @("--winsw", $WinSW, "--winsw-sha256", $WinSWSha256) }
        Invoke-JobsyncIn $current (@("service", "install") + $winswArguments)
    }
    if ($Task) { Invoke-JobsyncIn $current @("schedule", "install") }
    Show-Version $current
} finally {
    Stop-Transcript | Out-Null
}
