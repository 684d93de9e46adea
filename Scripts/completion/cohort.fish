function __cohort_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __cohort_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __cohort_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __cohort_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __cohort_parse_tokens -S
    set -l unparsed_tokens (__cohort_tokens -pc)
    switch $unparsed_tokens[1]
    case 'cohort'
        __cohort_parse_subcommand 0 'h/help'
        switch $unparsed_tokens[1]
        case 'server'
            __cohort_parse_subcommand 0 'h/help'
            switch $unparsed_tokens[1]
            case 'add'
                __cohort_parse_subcommand 2 'auth=' 'token-env=' 'token-file=' 'kickoff=' 'client-id=' 'key=' 'alg=' 'kid=' 'scope=' 'token-url=' 'connect-timeout=' 'h/help'
            case 'list'
                __cohort_parse_subcommand 0 'format=' 'h/help'
            case 'show'
                __cohort_parse_subcommand 1 'format=' 'h/help'
            case 'set'
                __cohort_parse_subcommand 1 'connect-timeout=' 'kickoff=' 'h/help'
            case 'remove'
                __cohort_parse_subcommand 1 'h/help'
            case 'rename'
                __cohort_parse_subcommand 2 'h/help'
            case 'check'
                __cohort_parse_subcommand 1 'format=' 'h/help'
            end
        case 'cohort'
            __cohort_parse_subcommand 0 'h/help'
            switch $unparsed_tokens[1]
            case 'add'
                __cohort_parse_subcommand 1 'server=' 'group=' 'types=' 'type-filter=+' 'elements=' 'note=' 'h/help'
            case 'set'
                __cohort_parse_subcommand 1 'types=' 'type-filter=+' 'no-type-filter' 'elements=' 'h/help'
            case 'list'
                __cohort_parse_subcommand 0 'format=' 'h/help'
            case 'show'
                __cohort_parse_subcommand 1 'format=' 'h/help'
            case 'remove'
                __cohort_parse_subcommand 1 'force' 'h/help'
            case 'rename'
                __cohort_parse_subcommand 2 'h/help'
            end
        case 'set'
            __cohort_parse_subcommand 2 'h/help'
        case 'run'
            __cohort_parse_subcommand 1 'echo' 'record' 'h/help'
        case 'sleep'
            __cohort_parse_subcommand 1 'h/help'
        case 'version'
            __cohort_parse_subcommand 0 'h/help'
        case 'quit'
            __cohort_parse_subcommand 0 'h/help'
        case 'export'
            __cohort_parse_subcommand 1 'incremental' 'full' 'since=' 'until=' 'type=+' 'type-filter=+' 'elements=' 'output-format=' 'parallel=' 'resume' 'cancel' 'reconcile' 'accept-partial' 'keep-failed' 'dry-run' 'allow-origin=+' 'format=' 'h/help'
        case 'status'
            __cohort_parse_subcommand 1 'format=' 'h/help'
        case 'history'
            __cohort_parse_subcommand 1 'chart' 'format=' 'h/help'
        case 'snapshots'
            __cohort_parse_subcommand 1 'format=' 'h/help'
        case 'summary'
            __cohort_parse_subcommand 1 'at=' 'by=' 'chart' 'format=' 'h/help'
        case 'diff'
            __cohort_parse_subcommand 3 'type=' 'ids' 'format=' 'h/help'
        case 'show'
            __cohort_parse_subcommand 2 'at=' 'versions' 'format=' 'h/help'
        case 'watermarks'
            __cohort_parse_subcommand 1 'format=' 'h/help'
        case 'serve'
            __cohort_parse_subcommand 0 'port=' 'host=' 'patients=' 'seed=' 'flavor=' 'auth=' 'bearer-token=' 'bearer-token-env=' 'bearer-token-file=' 'smart-client=+' 'token-lifetime=' 'data=' 'state=' 'fault=' 'no-deleted' 'ignore-patient' 'polls=' 'resources-per-file=' 'start-time=' 'background' 'exit-after=' 'h/help'
        case 'advance'
            __cohort_parse_subcommand 0 'days=' 'format=' 'h/help'
        case 'record'
            __cohort_parse_subcommand 2 'h/help'
        case 'verify'
            __cohort_parse_subcommand 1 'format=' 'h/help'
        case 'replay'
            __cohort_parse_subcommand 1 'frozen' 'h/help'
        case 'expect'
            __cohort_parse_subcommand -r 1 'h/help'
        case 'keygen'
            __cohort_parse_subcommand 0 'alg=' 'out=' 'h/help'
        case 'view'
            __cohort_parse_subcommand 0 'h/help'
            switch $unparsed_tokens[1]
            case 'run'
                __cohort_parse_subcommand 2 'at=' 'format=' 'out=' 'h/help'
            case 'save'
                __cohort_parse_subcommand 2 'h/help'
            case 'list'
                __cohort_parse_subcommand 0 'format=' 'h/help'
            case 'show'
                __cohort_parse_subcommand 1 'json' 'format=' 'h/help'
            case 'materialize'
                __cohort_parse_subcommand 2 'at=' 'format=' 'h/help'
            case 'diff'
                __cohort_parse_subcommand 4 'format=' 'h/help'
            end
        case 'sql'
            __cohort_parse_subcommand 2 'format=' 'h/help'
        case 'report'
            __cohort_parse_subcommand 1 'out=' 'open' 'h/help'
        case 'clear'
            __cohort_parse_subcommand 0 'h/help'
        case 'help'
            __cohort_parse_subcommand -r 1 
        end
    end
end

function __cohort_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __cohort_parse_subcommand -S -a positional_count
    argparse -s r -- $argv
    set -l option_specs $argv[2..]
    set -l is_repeating_positional $_flag_r
    set -el _flag_r
    set -a commands $unparsed_tokens[1]
    set positional_index 0
    while true
        set -e unparsed_tokens[1]
        argparse -sn "$commands" $option_specs -- $unparsed_tokens 2> /dev/null
        set unparsed_tokens $argv
        set positional_index (math $positional_index + 1)
        for non_repeating_flag_or_option in $non_repeating_flags_or_options
            if set -ql "_flag_$(string replace -a - _ -- $non_repeating_flag_or_option)"
                set non_repeating_flags_or_options_absent 1
                break
            end
        end
        test (count $unparsed_tokens) -eq 0 -o \( -z "$is_repeating_positional" -a "$positional_index" -gt "$positional_count" \) && break
    end
end

function __cohort_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __cohort_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__cohort_tokens -p)
    if test -z "$(__cohort_tokens -t)"
        set -l index (count (__cohort_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'cohort' -f
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'server' -d 'Register and inspect FHIR servers.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'cohort' -d 'Name cohorts: a FHIR Group on a registered server.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'set' -d 'Set a shell option (format, echo, bail, color) or a script variable.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'run' -d 'Run a script of commands (paths relative to the including script).'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'sleep' -d 'Wait a number of seconds (Ctrl-C interrupts), e.g. between steps of a script.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'version' -d 'Print the version.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'quit' -d 'Leave the shell (also `exit`, Ctrl-D).'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'export' -d 'Export a cohort with Bulk Data $export (kick-off, poll, download, verify, commit a snapshot).'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'status' -d 'Show unfinished export jobs and their phase.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'history' -d 'Every export of a cohort, including failed and cancelled ones.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'snapshots' -d 'One row per committed export: id, kind, _since, transactionTime, counts.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'summary' -d 'Resources per type at a snapshot (with the change since the previous one), or counts straight from NDJSON files.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'diff' -d 'What changed between two snapshots (default: the last two): added, changed, removed, unchanged; joiners and leavers.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'show' -d 'A resource\'s JSON as it was at a snapshot; --versions for its history.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'watermarks' -d 'Per resource type: the transactionTime the next --incremental export sends as _since.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'serve' -d 'Run the built-in FHIR Bulk Data server with synthetic patients (127.0.0.1 unless told otherwise).'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'advance' -d 'Move the built-in server\'s clock: new visits, updates, deletions, patients joining and leaving groups.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'record' -d 'Record this session\'s commands and exports to a run record (on [FILE] / off).'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'verify' -d 'Check, without network, that every file in a notebook\'s run record is present and unchanged and the index agrees.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'replay' -d 'Re-run a recorded notebook; --frozen runs the analysis against the recorded snapshots (byte-identical output).'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'expect' -d 'Assert in scripts: `expect count COHORT TYPE OP N`, `expect rows VIEW COHORT OP N`, `expect diff COHORT TYPE added|changed|removed OP N`, `expect members COHORT OP N`, `expect snapshots COHORT OP N`.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'keygen' -d 'Make a private key for SMART Backend Services (PEM, mode 0600) and print its public JWKS to register.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'view' -d 'SQL-on-FHIR v2 ViewDefinitions: run over NDJSON files or a cohort\'s snapshot; save them in the workspace.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'sql' -d 'Read-only SQL over a cohort\'s materialized views (a statement that writes is refused).'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'report' -d 'Write one self-contained HTML page about a cohort: definition, export history, counts and membership over time, the last diff, watermarks.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'clear' -d 'Clear the terminal screen (also Ctrl-L at the prompt).'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort server" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort server" -eq 1' -fa 'add' -d 'Register a FHIR server by name.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort server" -eq 1' -fa 'list' -d 'List registered servers.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort server" -eq 1' -fa 'show' -d 'Show one server\'s settings.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort server" -eq 1' -fa 'set' -d 'Change a server\'s connection settings (its cohorts and their history stay).'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort server" -eq 1' -fa 'remove' -d 'Remove a server (no cohort may use it).'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort server" -eq 1' -fa 'rename' -d 'Rename a server (its cohorts follow).'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort server" -eq 1' -fa 'check' -d 'Ask a server what it supports: authorization, the CapabilityStatement\'s export levels, types and parameters.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort server add" auth' -l 'auth' -d 'Authorization: none, bearer or smart.' -rfka 'none bearer smart'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort server add" token-env' -l 'token-env' -d 'Environment variable that holds the bearer token.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort server add" token-file' -l 'token-file' -d 'File that holds the bearer token.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort server add" kickoff' -l 'kickoff' -d 'Kick-off method: get (default) or post (a Parameters body).' -rfka 'get post'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort server add" client-id' -l 'client-id' -d 'SMART Backend Services client id.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort server add" key' -l 'key' -d 'Path of the private key (PEM or JWK) for SMART Backend Services.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort server add" alg' -l 'alg' -d 'Signing algorithm: RS384 or ES384.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort server add" kid' -l 'kid' -d 'Key id (kid) registered with the server.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort server add" scope' -l 'scope' -d 'Scopes to request (default system/*.rs).' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort server add" token-url' -l 'token-url' -d 'Token endpoint (default: from .well-known/smart-configuration).' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort server add" connect-timeout' -l 'connect-timeout' -d 'Seconds to wait for a connection before reporting the server unreachable (default 5).' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort server add" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort server list" format' -l 'format' -d 'Output format: table, plain, json or csv (default: table on a terminal, plain when piped).' -rfka 'table plain json csv'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort server list" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort server show" -eq 1' -fka '(__cohort_custom_completion ---completion server show -- positional@0 (count (__cohort_tokens -pc)) (__cohort_tokens -tC))'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort server show" format' -l 'format' -d 'Output format: table, plain, json or csv (default: table on a terminal, plain when piped).' -rfka 'table plain json csv'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort server show" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort server set" -eq 1' -fka '(__cohort_custom_completion ---completion server set -- positional@0 (count (__cohort_tokens -pc)) (__cohort_tokens -tC))'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort server set" connect-timeout' -l 'connect-timeout' -d 'Seconds to wait for a connection before reporting the server unreachable (default 5).' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort server set" kickoff' -l 'kickoff' -d 'Kick-off method: get or post (a Parameters body).' -rfka 'get post'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort server set" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort server remove" -eq 1' -fka '(__cohort_custom_completion ---completion server remove -- positional@0 (count (__cohort_tokens -pc)) (__cohort_tokens -tC))'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort server remove" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort server rename" -eq 1' -fka '(__cohort_custom_completion ---completion server rename -- positional@0 (count (__cohort_tokens -pc)) (__cohort_tokens -tC))'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort server rename" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort server check" -eq 1' -fka '(__cohort_custom_completion ---completion server check -- positional@0 (count (__cohort_tokens -pc)) (__cohort_tokens -tC))'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort server check" format' -l 'format' -d 'Output format: table, plain, json or csv (default: table on a terminal, plain when piped).' -rfka 'table plain json csv'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort server check" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort cohort" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort cohort" -eq 1' -fa 'add' -d 'Map a cohort name to a Group on a server.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort cohort" -eq 1' -fa 'set' -d 'Change a cohort\'s definition (types, type filters, elements); says which watermarks it resets.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort cohort" -eq 1' -fa 'list' -d 'List cohorts.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort cohort" -eq 1' -fa 'show' -d 'Show one cohort.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort cohort" -eq 1' -fa 'remove' -d 'Remove a cohort; with exports it needs --force and deletes its folder.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort cohort" -eq 1' -fa 'rename' -d 'Rename a cohort and its folder.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort cohort add" server' -l 'server' -d 'Server name.' -rfka '(__cohort_custom_completion ---completion cohort add -- --server (count (__cohort_tokens -pc)) (__cohort_tokens -tC))'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort cohort add" group' -l 'group' -d 'FHIR Group id.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort cohort add" types' -l 'types' -d 'Default resource types, comma-separated (e.g. Patient,Observation).' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort cohort add"' -l 'type-filter' -d 'A _typeFilter query that is part of the cohort (repeatable).' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort cohort add" elements' -l 'elements' -d '_elements that are part of the cohort, comma-separated.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort cohort add" note' -l 'note' -d 'A note for the record.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort cohort add" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort cohort set" types' -l 'types' -d 'Resource types, comma-separated; \'\' for every type.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort cohort set"' -l 'type-filter' -d 'A _typeFilter query (repeatable); replaces the cohort\'s filters.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort cohort set" no-type-filter' -l 'no-type-filter' -d 'Remove the cohort\'s type filters.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort cohort set" elements' -l 'elements' -d '_elements, comma-separated; \'\' for whole resources.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort cohort set" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort cohort list" format' -l 'format' -d 'Output format: table, plain, json or csv (default: table on a terminal, plain when piped).' -rfka 'table plain json csv'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort cohort list" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort cohort show" -eq 1' -fka '(__cohort_custom_completion ---completion cohort show -- positional@0 (count (__cohort_tokens -pc)) (__cohort_tokens -tC))'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort cohort show" format' -l 'format' -d 'Output format: table, plain, json or csv (default: table on a terminal, plain when piped).' -rfka 'table plain json csv'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort cohort show" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort cohort remove" -eq 1' -fka '(__cohort_custom_completion ---completion cohort remove -- positional@0 (count (__cohort_tokens -pc)) (__cohort_tokens -tC))'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort cohort remove" force' -l 'force' -d 'Also delete its exports, snapshots and files.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort cohort remove" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort cohort rename" -eq 1' -fka '(__cohort_custom_completion ---completion cohort rename -- positional@0 (count (__cohort_tokens -pc)) (__cohort_tokens -tC))'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort cohort rename" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort set" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort run" echo' -l 'echo' -d 'Print each command before its output.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort run" record' -l 'record' -d 'Write a run record (FILE.run.json) beside the script.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort run" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort sleep" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort version" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort quit" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort export" -eq 1' -fka '(__cohort_custom_completion ---completion export -- positional@0 (count (__cohort_tokens -pc)) (__cohort_tokens -tC))'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort export" incremental' -l 'incremental' -d 'Only what changed since the last snapshot (_since = its transactionTime).'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort export" full' -l 'full' -d 'A full export that re-baselines the cohort (the default).'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort export" since' -l 'since' -d 'Only changes after this FHIR instant (e.g. 2024-01-15T00:00:00Z).' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort export" until' -l 'until' -d 'Only changes up to this FHIR instant (STU3 _until).' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort export"' -l 'type' -d 'Resource types, comma-separated or repeated (default: the cohort\'s).' -rfka '(__cohort_custom_completion ---completion export -- --type (count (__cohort_tokens -pc)) (__cohort_tokens -tC))'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort export"' -l 'type-filter' -d 'A _typeFilter query, e.g. \'Observation?code=4548-4\' (repeatable).' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort export" elements' -l 'elements' -d 'Elements to include (_elements), comma-separated.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort export" output-format' -l 'output-format' -d 'application/fhir+ndjson, application/ndjson or ndjson.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort export" parallel' -l 'parallel' -d 'Parallel downloads (1–10).' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort export" resume' -l 'resume' -d 'Resume the cohort\'s unfinished job (the default when there is one).'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort export" cancel' -l 'cancel' -d 'Cancel the cohort\'s unfinished job (DELETE on the server) and mark it cancelled.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort export" reconcile' -l 'reconcile' -d 'List the ids the server has now (_elements=id) and remove from the state what it no longer has.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort export" accept-partial' -l 'accept-partial' -d 'Advance watermarks even when the server reported errors.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort export" keep-failed' -l 'keep-failed' -d 'Keep the folder of a failed or cancelled export (removed by default).'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort export" dry-run' -l 'dry-run' -d 'Print the kick-off request and send nothing.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort export"' -l 'allow-origin' -d 'Another host the token may be sent to for manifest files (repeatable).' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort export" format' -l 'format' -d 'Output format: table, plain, json or csv (default: table on a terminal, plain when piped).' -rfka 'table plain json csv'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort export" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort status" -eq 1' -fka '(__cohort_custom_completion ---completion status -- positional@0 (count (__cohort_tokens -pc)) (__cohort_tokens -tC))'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort status" format' -l 'format' -d 'Output format: table, plain, json or csv (default: table on a terminal, plain when piped).' -rfka 'table plain json csv'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort status" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort history" -eq 1' -fka '(__cohort_custom_completion ---completion history -- positional@0 (count (__cohort_tokens -pc)) (__cohort_tokens -tC))'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort history" chart' -l 'chart' -d 'Then a bar chart of the cohort\'s size after each export (on a terminal; --color forces it).'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort history" format' -l 'format' -d 'Output format: table, plain, json or csv (default: table on a terminal, plain when piped).' -rfka 'table plain json csv'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort history" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort snapshots" -eq 1' -fka '(__cohort_custom_completion ---completion snapshots -- positional@0 (count (__cohort_tokens -pc)) (__cohort_tokens -tC))'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort snapshots" format' -l 'format' -d 'Output format: table, plain, json or csv (default: table on a terminal, plain when piped).' -rfka 'table plain json csv'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort snapshots" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort summary" -eq 1' -fka '(__cohort_custom_completion ---completion summary -- positional@0 (count (__cohort_tokens -pc)) (__cohort_tokens -tC))'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort summary" at' -l 'at' -d 'Snapshot: a number, latest (default) or previous.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort summary" by' -l 'by' -d 'patient: per-patient count distributions (min/median/max).' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort summary" chart' -l 'chart' -d 'Then a sparkline per type over the snapshots (on a terminal; --color forces it).'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort summary" format' -l 'format' -d 'Output format: table, plain, json or csv (default: table on a terminal, plain when piped).' -rfka 'table plain json csv'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort summary" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort diff" -eq 1' -fka '(__cohort_custom_completion ---completion diff -- positional@0 (count (__cohort_tokens -pc)) (__cohort_tokens -tC))'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort diff" type' -l 'type' -d 'Only this resource type.' -rfka '(__cohort_custom_completion ---completion diff -- --type (count (__cohort_tokens -pc)) (__cohort_tokens -tC))'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort diff" ids' -l 'ids' -d 'List the ids.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort diff" format' -l 'format' -d 'Output format: table, plain, json or csv (default: table on a terminal, plain when piped).' -rfka 'table plain json csv'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort diff" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort show" -eq 1' -fka '(__cohort_custom_completion ---completion show -- positional@0 (count (__cohort_tokens -pc)) (__cohort_tokens -tC))'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort show" at' -l 'at' -d 'Snapshot: a number, latest (default) or previous.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort show" versions' -l 'versions' -d 'Every stored version across snapshots.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort show" format' -l 'format' -d 'Output format: table, plain, json or csv (default: table on a terminal, plain when piped).' -rfka 'table plain json csv'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort show" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort watermarks" -eq 1' -fka '(__cohort_custom_completion ---completion watermarks -- positional@0 (count (__cohort_tokens -pc)) (__cohort_tokens -tC))'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort watermarks" format' -l 'format' -d 'Output format: table, plain, json or csv (default: table on a terminal, plain when piped).' -rfka 'table plain json csv'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort watermarks" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort serve" port' -l 'port' -d 'Port (0 picks a free one).' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort serve" host' -l 'host' -d 'Address to listen on.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort serve" patients' -l 'patients' -d 'Number of synthetic patients.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort serve" seed' -l 'seed' -d 'Seed of the synthetic population (same seed, same data).' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort serve" flavor' -l 'flavor' -d 'URL style: standard or netsmart.' -rfka 'standard netsmart'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort serve" auth' -l 'auth' -d 'Authorization: none, bearer or smart.' -rfka 'none bearer smart'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort serve" bearer-token' -l 'bearer-token' -d 'The static token for --auth bearer (visible in `ps`: prefer --bearer-token-env or --bearer-token-file).' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort serve" bearer-token-env' -l 'bearer-token-env' -d 'Read the static token for --auth bearer from this environment variable.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort serve" bearer-token-file' -l 'bearer-token-file' -d 'Read the static token for --auth bearer from this file (first line).' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort serve"' -l 'smart-client' -d 'A SMART client: ID=JWKS_FILE (repeatable).' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort serve" token-lifetime' -l 'token-lifetime' -d 'Lifetime of issued tokens, seconds.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort serve" data' -l 'data' -d 'Serve this dataset (NDJSON per type, or Synthea Bundles) instead of generating one.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort serve" state' -l 'state' -d 'Keep the server\'s state (clock, changes) in this SQLite file.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort serve" fault' -l 'fault' -d 'Fault switches, e.g. kickoff429=1,transientPolls=2,gzip,badLine=wrongType.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort serve" no-deleted' -l 'no-deleted' -d 'Never report deletions (no `deleted` in manifests), like some servers.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort serve" ignore-patient' -l 'ignore-patient' -d 'Ignore patient= in POST kick-offs and export the whole Group, with a warning in the manifest\'s error files.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort serve" polls' -l 'polls' -d 'Status polls answered 202 before the manifest is ready.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort serve" resources-per-file' -l 'resources-per-file' -d 'Split large types into files of this many resources.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort serve" start-time' -l 'start-time' -d 'The simulated clock\'s start (a FHIR instant).' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort serve" background' -l 'background' -d 'Run inside this session (for scripts) instead of in the foreground.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort serve" exit-after' -l 'exit-after' -d 'Stop by itself after this many seconds (foreground).' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort serve" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort advance" days' -l 'days' -d 'Days to move.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort advance" format' -l 'format' -d 'Output format: table, plain, json or csv (default: table on a terminal, plain when piped).' -rfka 'table plain json csv'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort advance" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort record" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort verify" format' -l 'format' -d 'Output format: table, plain, json or csv (default: table on a terminal, plain when piped).' -rfka 'table plain json csv'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort verify" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort replay" frozen' -l 'frozen' -d 'Do not export again: analysis commands run against the recorded snapshots.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort replay" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort expect" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort keygen" alg' -l 'alg' -d 'ES384 or RS384.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort keygen" out' -l 'out' -d 'Where to write the private key (never overwritten).' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort keygen" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort view" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort view" -eq 1' -fa 'run' -d 'Rows of a view over a cohort at a snapshot (the live resources of the view\'s type), or over NDJSON files.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort view" -eq 1' -fa 'save' -d 'Validate a ViewDefinition file and keep it in the workspace under NAME.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort view" -eq 1' -fa 'list' -d 'Views saved in the workspace.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort view" -eq 1' -fa 'show' -d 'A saved view\'s columns (FHIR type → SQL type); --json for its definition.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort view" -eq 1' -fa 'materialize' -d 'Write a view\'s rows at a snapshot into the cohort\'s analysis database (table NAME, typed columns) for `sql`.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort view" -eq 1' -fa 'diff' -d 'Rows of a view added and removed between two snapshots (default: the last two).'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort view run" at' -l 'at' -d 'Snapshot: a number, latest (default) or previous.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort view run" format' -l 'format' -d 'Output format: table, plain, csv, json or ndjson (default: table on a terminal, plain when piped).' -rfka 'table plain csv json ndjson'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort view run" out' -l 'out' -d 'Write the rows to this file instead of the terminal.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort view run" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort view save" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort view list" format' -l 'format' -d 'Output format: table, plain, json or csv (default: table on a terminal, plain when piped).' -rfka 'table plain json csv'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort view list" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort view show" json' -l 'json' -d 'Print the ViewDefinition JSON as saved.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort view show" format' -l 'format' -d 'Output format: table, plain, json or csv (default: table on a terminal, plain when piped).' -rfka 'table plain json csv'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort view show" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort view materialize" at' -l 'at' -d 'Snapshot: a number, latest (default) or previous.' -rfka ''
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort view materialize" format' -l 'format' -d 'Output format: table, plain, json or csv (default: table on a terminal, plain when piped).' -rfka 'table plain json csv'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort view materialize" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort view diff" format' -l 'format' -d 'Output format: table, plain, json or csv (default: table on a terminal, plain when piped).' -rfka 'table plain json csv'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort view diff" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort sql" format' -l 'format' -d 'Output format: table, plain, json or csv (default: table on a terminal, plain when piped).' -rfka 'table plain json csv'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort sql" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_positional "cohort report" -eq 1' -fka '(__cohort_custom_completion ---completion report -- positional@0 (count (__cohort_tokens -pc)) (__cohort_tokens -tC))'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort report" out' -l 'out' -d 'Where to write it (default: WORKSPACE/COHORT/report.html).' -rfa '(for p in (string match -e -- \'*/\' (commandline -t);or printf \n)*.\'html\';printf %s\n $p;end;__fish_complete_directories (commandline -t) \'\')'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort report" open' -l 'open' -d 'Open it in the default browser afterwards.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort report" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'cohort' -n '__cohort_should_offer_completions_for_flags_or_options "cohort clear" h help' -s 'h' -l 'help' -d 'Show help information.'
