# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_ztpd_global_optspecs
    string join \n config= h/help V/version
end

function __fish_ztpd_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_ztpd_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_ztpd_using_subcommand
    set -l cmd (__fish_ztpd_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c ztpd -n "__fish_ztpd_needs_command" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_needs_command" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_needs_command" -s V -l version -d 'Print version'
complete -c ztpd -n "__fish_ztpd_needs_command" -f -a "validate" -d 'Check plans and everything they reference; exit 0 valid, 78 invalid'
complete -c ztpd -n "__fish_ztpd_needs_command" -f -a "run" -d 'The daemon: DHCP + TFTP + HTTP + watcher + credentials + broker + bridge'
complete -c ztpd -n "__fish_ztpd_needs_command" -f -a "render" -d 'Print the rendered config and DHCP view of one device'
complete -c ztpd -n "__fish_ztpd_needs_command" -f -a "plan" -d 'Plan operations for code review'
complete -c ztpd -n "__fish_ztpd_needs_command" -f -a "status" -d 'Device states of a running daemon (operator API)'
complete -c ztpd -n "__fish_ztpd_needs_command" -f -a "approve" -d 'Approve a device waiting in manual approval mode (name or serial)'
complete -c ztpd -n "__fish_ztpd_needs_command" -f -a "replace" -d 'Accept a new box (SERIAL) at a planned device\'s place (SPEC §12)'
complete -c ztpd -n "__fish_ztpd_needs_command" -f -a "group" -d 'Groups of devices of one model (operator API)'
complete -c ztpd -n "__fish_ztpd_needs_command" -f -a "rollout" -d 'Rollouts of a group under a policy (operator API)'
complete -c ztpd -n "__fish_ztpd_needs_command" -f -a "device" -d 'Simulated devices'
complete -c ztpd -n "__fish_ztpd_needs_command" -f -a "bridge" -d 'The telemetry bridge alone (MQTT -> MongoDB or the embedded store)'
complete -c ztpd -n "__fish_ztpd_needs_command" -f -a "analyze" -d 'Per-device telemetry statistics: count, min/mean/max latitude and longitude, last battery'
complete -c ztpd -n "__fish_ztpd_needs_command" -f -a "completions" -d 'Print shell completions'
complete -c ztpd -n "__fish_ztpd_needs_command" -f -a "topology" -d 'Offline topology checks'
complete -c ztpd -n "__fish_ztpd_needs_command" -f -a "hub" -d 'The local hub: provisioning settings, devices, direct methods, twins'
complete -c ztpd -n "__fish_ztpd_needs_command" -f -a "credentials" -d 'Device credentials: `device_credentials/device_<id>.json` + history'
complete -c ztpd -n "__fish_ztpd_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ztpd -n "__fish_ztpd_using_subcommand validate" -l format -r -f -a "text\t''
json\t''"
complete -c ztpd -n "__fish_ztpd_using_subcommand validate" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand validate" -l deny-warnings -d 'Treat warnings as errors'
complete -c ztpd -n "__fish_ztpd_using_subcommand validate" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand run" -l plans -d 'Directory of plans to serve (default: `paths.plans`)' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand run" -l watch -d 'How to notice edits: inotify events, polling, or off (SIGHUP only)' -r -f -a "events\t'inotify (or the platform\'s native events)'
poll\t'Scan for changes; for network or FUSE filesystems without events'
off\t'Do not watch; reload only on SIGHUP'"
complete -c ztpd -n "__fish_ztpd_using_subcommand run" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ztpd -n "__fish_ztpd_using_subcommand render" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand render" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand plan; and not __fish_seen_subcommand_from diff bindings help" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand plan; and not __fish_seen_subcommand_from diff bindings help" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand plan; and not __fish_seen_subcommand_from diff bindings help" -f -a "diff" -d 'What changes for each device if NEW replaces OLD; exit 0 no change, 1 changes'
complete -c ztpd -n "__fish_ztpd_using_subcommand plan; and not __fish_seen_subcommand_from diff bindings help" -f -a "bindings" -d 'Print the serials a running daemon bound at run time as plan lines to commit (SPEC §12); once the plan says the same, the binding is dropped'
complete -c ztpd -n "__fish_ztpd_using_subcommand plan; and not __fish_seen_subcommand_from diff bindings help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ztpd -n "__fish_ztpd_using_subcommand plan; and __fish_seen_subcommand_from diff" -l format -r -f -a "text\t''
json\t''"
complete -c ztpd -n "__fish_ztpd_using_subcommand plan; and __fish_seen_subcommand_from diff" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand plan; and __fish_seen_subcommand_from diff" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand plan; and __fish_seen_subcommand_from bindings" -l format -r -f -a "text\t''
json\t''"
complete -c ztpd -n "__fish_ztpd_using_subcommand plan; and __fish_seen_subcommand_from bindings" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand plan; and __fish_seen_subcommand_from bindings" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand plan; and __fish_seen_subcommand_from help" -f -a "diff" -d 'What changes for each device if NEW replaces OLD; exit 0 no change, 1 changes'
complete -c ztpd -n "__fish_ztpd_using_subcommand plan; and __fish_seen_subcommand_from help" -f -a "bindings" -d 'Print the serials a running daemon bound at run time as plan lines to commit (SPEC §12); once the plan says the same, the binding is dropped'
complete -c ztpd -n "__fish_ztpd_using_subcommand plan; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ztpd -n "__fish_ztpd_using_subcommand status" -l format -r -f -a "text\t''
json\t''"
complete -c ztpd -n "__fish_ztpd_using_subcommand status" -l wait -d 'Wait up to DUR for a daemon that is still starting (no token file yet, nothing listening) before giving up, e.g. right after `ztpd run &`' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand status" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand status" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand approve" -l address -d 'The address approved, for a device with neither `mac` nor `ip`: the `pending_address` its pending hello came from. Without it, the pending address the daemon shows is printed and approved' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand approve" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand approve" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand replace" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand replace" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and not __fish_seen_subcommand_from list show create delete export help" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and not __fish_seen_subcommand_from list show create delete export help" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and not __fish_seen_subcommand_from list show create delete export help" -f -a "list" -d 'Every group, from the plan and made at runtime'
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and not __fish_seen_subcommand_from list show create delete export help" -f -a "show" -d 'One group: model, devices, policy'
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and not __fish_seen_subcommand_from list show create delete export help" -f -a "create" -d 'A runtime group of devices of one model (kept in the state store)'
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and not __fish_seen_subcommand_from list show create delete export help" -f -a "delete" -d 'Delete a runtime group (plan groups live in their plan file)'
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and not __fish_seen_subcommand_from list show create delete export help" -f -a "export" -d 'Print the `[groups.NAME]` table to paste into a plan'
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and not __fish_seen_subcommand_from list show create delete export help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and __fish_seen_subcommand_from list" -l format -r -f -a "text\t''
json\t''"
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and __fish_seen_subcommand_from list" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and __fish_seen_subcommand_from show" -l format -r -f -a "text\t''
json\t''"
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and __fish_seen_subcommand_from show" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and __fish_seen_subcommand_from create" -l devices -d 'Device names, comma-separated' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and __fish_seen_subcommand_from create" -l select -d '`model=M[,name=GLOB]`' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and __fish_seen_subcommand_from create" -l format -r -f -a "text\t''
json\t''"
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and __fish_seen_subcommand_from create" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and __fish_seen_subcommand_from delete" -l format -r -f -a "text\t''
json\t''"
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and __fish_seen_subcommand_from delete" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and __fish_seen_subcommand_from export" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and __fish_seen_subcommand_from help" -f -a "list" -d 'Every group, from the plan and made at runtime'
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and __fish_seen_subcommand_from help" -f -a "show" -d 'One group: model, devices, policy'
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and __fish_seen_subcommand_from help" -f -a "create" -d 'A runtime group of devices of one model (kept in the state store)'
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Delete a runtime group (plan groups live in their plan file)'
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and __fish_seen_subcommand_from help" -f -a "export" -d 'Print the `[groups.NAME]` table to paste into a plan'
complete -c ztpd -n "__fish_ztpd_using_subcommand group; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and not __fish_seen_subcommand_from start list status pause resume abort help" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and not __fish_seen_subcommand_from start list status pause resume abort help" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and not __fish_seen_subcommand_from start list status pause resume abort help" -f -a "start" -d 'Start a software (default), config or method rollout of a group'
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and not __fish_seen_subcommand_from start list status pause resume abort help" -f -a "list" -d 'Every rollout'
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and not __fish_seen_subcommand_from start list status pause resume abort help" -f -a "status" -d 'One rollout; `--watch` follows it until it ends'
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and not __fish_seen_subcommand_from start list status pause resume abort help" -f -a "pause"
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and not __fish_seen_subcommand_from start list status pause resume abort help" -f -a "resume"
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and not __fish_seen_subcommand_from start list status pause resume abort help" -f -a "abort"
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and not __fish_seen_subcommand_from start list status pause resume abort help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from start" -l version -d 'Target software version (default: the model\'s)' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from start" -l image -d 'Image under `paths.files` (default: the model\'s)' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from start" -l method -d 'A method rollout: call this direct method on each device (SPEC §13)' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from start" -l payload -d 'The method\'s payload, JSON (with --method)' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from start" -l batch-size -d 'Devices per batch, at least 1' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from start" -l canary -d 'Devices in the first (canary) batch; 0: no canary batch' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from start" -l max-failures -d 'A count (`2`) or a percentage of the group (`10%`, rounded down)' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from start" -l pause-between -d 'Wait between batches; 0s: none' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from start" -l window -d '`HH:MM-HH:MM`, optionally after days: `"Sat,Sun 01:00-05:00"`' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from start" -l device-timeout -d 'How long one device may take, longer than 0' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from start" -l order -d '`topology` (farthest from a root first) or `plan`' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from start" -l format -r -f -a "text\t''
json\t''"
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from start" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from start" -l kind-config -d 'A config rollout (`reconfigure`); written `--config` after GROUP (`ztpd rollout start leaves --config`)'
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from start" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from list" -l format -r -f -a "text\t''
json\t''"
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from list" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from status" -l format -r -f -a "text\t''
json\t''"
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from status" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from status" -l watch
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from pause" -l format -r -f -a "text\t''
json\t''"
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from pause" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from pause" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from resume" -l format -r -f -a "text\t''
json\t''"
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from resume" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from resume" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from abort" -l format -r -f -a "text\t''
json\t''"
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from abort" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from abort" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from help" -f -a "start" -d 'Start a software (default), config or method rollout of a group'
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from help" -f -a "list" -d 'Every rollout'
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from help" -f -a "status" -d 'One rollout; `--watch` follows it until it ends'
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from help" -f -a "pause"
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from help" -f -a "resume"
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from help" -f -a "abort"
complete -c ztpd -n "__fish_ztpd_using_subcommand rollout; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and not __fish_seen_subcommand_from simulate help" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and not __fish_seen_subcommand_from simulate help" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and not __fish_seen_subcommand_from simulate help" -f -a "simulate" -d 'Simulated devices: telemetry devices (`--credential FILE`, or `--credentials DIR --fleet N`) or switches running the ZTP flow (`--switch SERIAL|all --server URL`)'
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and not __fish_seen_subcommand_from simulate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and __fish_seen_subcommand_from simulate" -l credential -d 'One device: its credential file (device_credentials/device_<id>.json)' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and __fish_seen_subcommand_from simulate" -l credentials -d 'A fleet: the directory holding device_*.json credentials' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and __fish_seen_subcommand_from simulate" -l fleet -d 'How many devices: with --credentials, N of its credentials at once; with --switch all, the first N planned switches' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and __fish_seen_subcommand_from simulate" -l count -d 'Messages per device, at least 1 (default: until the battery is empty)' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and __fish_seen_subcommand_from simulate" -l interval -d 'Time between readings, longer than 0, overriding the device function\'s (e.g. 100ms)' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and __fish_seen_subcommand_from simulate" -l broker -d 'Broker URL (default: hub.toml\'s `broker` when the credential is for that hub, the embedded broker for the local hub; else mqtts://<HostName>:8883)' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and __fish_seen_subcommand_from simulate" -l seed -d 'Seed the readings\' randomness (reproducible runs)' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and __fish_seen_subcommand_from simulate" -l switch -d 'A switch: serial (or name) of the planned switch, or `all` for every non-root device with links (`--fleet N`: the first N)' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and __fish_seen_subcommand_from simulate" -l server -d 'ztpd\'s HTTP address, e.g. http://127.0.0.1:8080. With --switch: where the switch talks to. For telemetry devices: the only origin a `refresh_credential` URL may point at (default: each plan site\'s `server_ip` at `listen.http`\'s port, as the daemon writes them)' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and __fish_seen_subcommand_from simulate" -l fault -d 'With --switch: `KIND[:DEVICE,DEVICE...]`, a fault for the listed devices (all when no list): wrong-model, move-port, swap, and for agents upgrade-fails, upgrade-silent, upgrade-miscabled. Repeatable' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and __fish_seen_subcommand_from simulate" -l concurrency -d 'With --switch: switches running at once (at least 1)' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and __fish_seen_subcommand_from simulate" -l plan -d 'With --switch: plan files or directories (default: `paths.plans`)' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and __fish_seen_subcommand_from simulate" -l dhcp -d 'With --switch: ztpd\'s DHCP address (`listen.dhcp`); lease through a relay first' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and __fish_seen_subcommand_from simulate" -l relay -d 'With --switch --dhcp: the simulated relay agent\'s address (giaddr; binds port 67)' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and __fish_seen_subcommand_from simulate" -l dhcp6 -d 'With --switch: ztpd\'s DHCPv6 address (`listen.dhcp6`, e.g. [::1]:547); lease the planned `ip6` through a DHCPv6 relay first. Give an IPv6 `--server` URL to run the whole flow over IPv6' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and __fish_seen_subcommand_from simulate" -l relay6 -d 'With --switch --dhcp6: the simulated DHCPv6 relay agent\'s address (binds port 547)' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and __fish_seen_subcommand_from simulate" -l approval-wait -d 'With --switch: how long a switch keeps asking while it waits for approval; `0s` asks once' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and __fish_seen_subcommand_from simulate" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and __fish_seen_subcommand_from simulate" -l agent -d 'With --switch: stay running after deployment, long-poll actions and carry them out (upgrade, reconfigure)'
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and __fish_seen_subcommand_from simulate" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and __fish_seen_subcommand_from help" -f -a "simulate" -d 'Simulated devices: telemetry devices (`--credential FILE`, or `--credentials DIR --fleet N`) or switches running the ZTP flow (`--switch SERIAL|all --server URL`)'
complete -c ztpd -n "__fish_ztpd_using_subcommand device; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ztpd -n "__fish_ztpd_using_subcommand bridge" -l client-id -d 'MQTT client id; stable across restarts, unique per bridge (default: ztpd-bridge-<hostname>)' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand bridge" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand bridge" -l no-share -d 'Subscribe directly instead of through the `$share/ztpd/` shared subscription'
complete -c ztpd -n "__fish_ztpd_using_subcommand bridge" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand analyze" -l device -d 'A device_id or a device_name' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand analyze" -l format -r -f -a "table\t''
json\t''
csv\t''"
complete -c ztpd -n "__fish_ztpd_using_subcommand analyze" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand analyze" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand completions" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand completions" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand topology; and not __fish_seen_subcommand_from diff help" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand topology; and not __fish_seen_subcommand_from diff help" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand topology; and not __fish_seen_subcommand_from diff help" -f -a "diff" -d 'Compare a reported neighbour table with the plan; exit 0 all match, 1 problems, 78 invalid input'
complete -c ztpd -n "__fish_ztpd_using_subcommand topology; and not __fish_seen_subcommand_from diff help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ztpd -n "__fish_ztpd_using_subcommand topology; and __fish_seen_subcommand_from diff" -l format -r -f -a "text\t''
json\t''"
complete -c ztpd -n "__fish_ztpd_using_subcommand topology; and __fish_seen_subcommand_from diff" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand topology; and __fish_seen_subcommand_from diff" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand topology; and __fish_seen_subcommand_from help" -f -a "diff" -d 'Compare a reported neighbour table with the plan; exit 0 all match, 1 problems, 78 invalid input'
complete -c ztpd -n "__fish_ztpd_using_subcommand topology; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and not __fish_seen_subcommand_from info devices invoke twin help" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and not __fish_seen_subcommand_from info devices invoke twin help" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and not __fish_seen_subcommand_from info devices invoke twin help" -f -a "info" -d 'What a device is given to register: id scope, provisioning host, CA'
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and not __fish_seen_subcommand_from info devices invoke twin help" -f -a "devices" -d 'Every device identity the hub knows (running daemon)'
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and not __fish_seen_subcommand_from info devices invoke twin help" -f -a "invoke" -d 'Call a direct method on a connected device (running daemon)'
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and not __fish_seen_subcommand_from info devices invoke twin help" -f -a "twin" -d 'Show a device\'s twin, or set desired properties (`--set KEY=JSON`)'
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and not __fish_seen_subcommand_from info devices invoke twin help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and __fish_seen_subcommand_from info" -l format -r -f -a "text\t''
json\t''"
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and __fish_seen_subcommand_from info" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and __fish_seen_subcommand_from info" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and __fish_seen_subcommand_from devices" -l format -r -f -a "text\t''
json\t''"
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and __fish_seen_subcommand_from devices" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and __fish_seen_subcommand_from devices" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and __fish_seen_subcommand_from invoke" -l payload -d 'The method\'s payload, JSON' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and __fish_seen_subcommand_from invoke" -l timeout -d 'How long to wait for the answer, 5s to 300s' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and __fish_seen_subcommand_from invoke" -l format -r -f -a "text\t''
json\t''"
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and __fish_seen_subcommand_from invoke" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and __fish_seen_subcommand_from invoke" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and __fish_seen_subcommand_from twin" -l set -r
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and __fish_seen_subcommand_from twin" -l format -r -f -a "text\t''
json\t''"
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and __fish_seen_subcommand_from twin" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and __fish_seen_subcommand_from twin" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and __fish_seen_subcommand_from help" -f -a "info" -d 'What a device is given to register: id scope, provisioning host, CA'
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and __fish_seen_subcommand_from help" -f -a "devices" -d 'Every device identity the hub knows (running daemon)'
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and __fish_seen_subcommand_from help" -f -a "invoke" -d 'Call a direct method on a connected device (running daemon)'
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and __fish_seen_subcommand_from help" -f -a "twin" -d 'Show a device\'s twin, or set desired properties (`--set KEY=JSON`)'
complete -c ztpd -n "__fish_ztpd_using_subcommand hub; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ztpd -n "__fish_ztpd_using_subcommand credentials; and not __fish_seen_subcommand_from create regenerate help" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand credentials; and not __fish_seen_subcommand_from create regenerate help" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand credentials; and not __fish_seen_subcommand_from create regenerate help" -f -a "create" -d 'Create one device credential (a device keeps its name if it had one)'
complete -c ztpd -n "__fish_ztpd_using_subcommand credentials; and not __fish_seen_subcommand_from create regenerate help" -f -a "regenerate" -d 'Rewrite every existing credential, keeping each device\'s name'
complete -c ztpd -n "__fish_ztpd_using_subcommand credentials; and not __fish_seen_subcommand_from create regenerate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ztpd -n "__fish_ztpd_using_subcommand credentials; and __fish_seen_subcommand_from create" -l function -d 'Device function: `templates/device_function/<NAME>.toml`' -r
complete -c ztpd -n "__fish_ztpd_using_subcommand credentials; and __fish_seen_subcommand_from create" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand credentials; and __fish_seen_subcommand_from create" -l new -d 'Make a simulated device id (SHA-1 hex digest of random bytes)'
complete -c ztpd -n "__fish_ztpd_using_subcommand credentials; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand credentials; and __fish_seen_subcommand_from regenerate" -l config -d 'Daemon settings file; its directory becomes the root for every path' -r -F
complete -c ztpd -n "__fish_ztpd_using_subcommand credentials; and __fish_seen_subcommand_from regenerate" -s h -l help -d 'Print help'
complete -c ztpd -n "__fish_ztpd_using_subcommand credentials; and __fish_seen_subcommand_from help" -f -a "create" -d 'Create one device credential (a device keeps its name if it had one)'
complete -c ztpd -n "__fish_ztpd_using_subcommand credentials; and __fish_seen_subcommand_from help" -f -a "regenerate" -d 'Rewrite every existing credential, keeping each device\'s name'
complete -c ztpd -n "__fish_ztpd_using_subcommand credentials; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and not __fish_seen_subcommand_from validate run render plan status approve replace group rollout device bridge analyze completions topology hub credentials help" -f -a "validate" -d 'Check plans and everything they reference; exit 0 valid, 78 invalid'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and not __fish_seen_subcommand_from validate run render plan status approve replace group rollout device bridge analyze completions topology hub credentials help" -f -a "run" -d 'The daemon: DHCP + TFTP + HTTP + watcher + credentials + broker + bridge'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and not __fish_seen_subcommand_from validate run render plan status approve replace group rollout device bridge analyze completions topology hub credentials help" -f -a "render" -d 'Print the rendered config and DHCP view of one device'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and not __fish_seen_subcommand_from validate run render plan status approve replace group rollout device bridge analyze completions topology hub credentials help" -f -a "plan" -d 'Plan operations for code review'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and not __fish_seen_subcommand_from validate run render plan status approve replace group rollout device bridge analyze completions topology hub credentials help" -f -a "status" -d 'Device states of a running daemon (operator API)'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and not __fish_seen_subcommand_from validate run render plan status approve replace group rollout device bridge analyze completions topology hub credentials help" -f -a "approve" -d 'Approve a device waiting in manual approval mode (name or serial)'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and not __fish_seen_subcommand_from validate run render plan status approve replace group rollout device bridge analyze completions topology hub credentials help" -f -a "replace" -d 'Accept a new box (SERIAL) at a planned device\'s place (SPEC §12)'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and not __fish_seen_subcommand_from validate run render plan status approve replace group rollout device bridge analyze completions topology hub credentials help" -f -a "group" -d 'Groups of devices of one model (operator API)'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and not __fish_seen_subcommand_from validate run render plan status approve replace group rollout device bridge analyze completions topology hub credentials help" -f -a "rollout" -d 'Rollouts of a group under a policy (operator API)'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and not __fish_seen_subcommand_from validate run render plan status approve replace group rollout device bridge analyze completions topology hub credentials help" -f -a "device" -d 'Simulated devices'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and not __fish_seen_subcommand_from validate run render plan status approve replace group rollout device bridge analyze completions topology hub credentials help" -f -a "bridge" -d 'The telemetry bridge alone (MQTT -> MongoDB or the embedded store)'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and not __fish_seen_subcommand_from validate run render plan status approve replace group rollout device bridge analyze completions topology hub credentials help" -f -a "analyze" -d 'Per-device telemetry statistics: count, min/mean/max latitude and longitude, last battery'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and not __fish_seen_subcommand_from validate run render plan status approve replace group rollout device bridge analyze completions topology hub credentials help" -f -a "completions" -d 'Print shell completions'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and not __fish_seen_subcommand_from validate run render plan status approve replace group rollout device bridge analyze completions topology hub credentials help" -f -a "topology" -d 'Offline topology checks'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and not __fish_seen_subcommand_from validate run render plan status approve replace group rollout device bridge analyze completions topology hub credentials help" -f -a "hub" -d 'The local hub: provisioning settings, devices, direct methods, twins'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and not __fish_seen_subcommand_from validate run render plan status approve replace group rollout device bridge analyze completions topology hub credentials help" -f -a "credentials" -d 'Device credentials: `device_credentials/device_<id>.json` + history'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and not __fish_seen_subcommand_from validate run render plan status approve replace group rollout device bridge analyze completions topology hub credentials help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and __fish_seen_subcommand_from plan" -f -a "diff" -d 'What changes for each device if NEW replaces OLD; exit 0 no change, 1 changes'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and __fish_seen_subcommand_from plan" -f -a "bindings" -d 'Print the serials a running daemon bound at run time as plan lines to commit (SPEC §12); once the plan says the same, the binding is dropped'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and __fish_seen_subcommand_from group" -f -a "list" -d 'Every group, from the plan and made at runtime'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and __fish_seen_subcommand_from group" -f -a "show" -d 'One group: model, devices, policy'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and __fish_seen_subcommand_from group" -f -a "create" -d 'A runtime group of devices of one model (kept in the state store)'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and __fish_seen_subcommand_from group" -f -a "delete" -d 'Delete a runtime group (plan groups live in their plan file)'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and __fish_seen_subcommand_from group" -f -a "export" -d 'Print the `[groups.NAME]` table to paste into a plan'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and __fish_seen_subcommand_from rollout" -f -a "start" -d 'Start a software (default), config or method rollout of a group'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and __fish_seen_subcommand_from rollout" -f -a "list" -d 'Every rollout'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and __fish_seen_subcommand_from rollout" -f -a "status" -d 'One rollout; `--watch` follows it until it ends'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and __fish_seen_subcommand_from rollout" -f -a "pause"
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and __fish_seen_subcommand_from rollout" -f -a "resume"
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and __fish_seen_subcommand_from rollout" -f -a "abort"
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and __fish_seen_subcommand_from device" -f -a "simulate" -d 'Simulated devices: telemetry devices (`--credential FILE`, or `--credentials DIR --fleet N`) or switches running the ZTP flow (`--switch SERIAL|all --server URL`)'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and __fish_seen_subcommand_from topology" -f -a "diff" -d 'Compare a reported neighbour table with the plan; exit 0 all match, 1 problems, 78 invalid input'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and __fish_seen_subcommand_from hub" -f -a "info" -d 'What a device is given to register: id scope, provisioning host, CA'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and __fish_seen_subcommand_from hub" -f -a "devices" -d 'Every device identity the hub knows (running daemon)'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and __fish_seen_subcommand_from hub" -f -a "invoke" -d 'Call a direct method on a connected device (running daemon)'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and __fish_seen_subcommand_from hub" -f -a "twin" -d 'Show a device\'s twin, or set desired properties (`--set KEY=JSON`)'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and __fish_seen_subcommand_from credentials" -f -a "create" -d 'Create one device credential (a device keeps its name if it had one)'
complete -c ztpd -n "__fish_ztpd_using_subcommand help; and __fish_seen_subcommand_from credentials" -f -a "regenerate" -d 'Rewrite every existing credential, keeping each device\'s name'
