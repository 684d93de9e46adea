#!/bin/bash

__cohort_cursor_index_in_current_word() {
    local remaining="${COMP_LINE}"

    local word
    for word in "${COMP_WORDS[@]::COMP_CWORD}"; do
        remaining="${remaining##*([[:space:]])"${word}"*([[:space:]])}"
    done

    local -ir index="$((COMP_POINT - ${#COMP_LINE} + ${#remaining}))"
    if [[ "${index}" -le 0 ]]; then
        printf 0
    else
        printf %s "${index}"
    fi
}

# positional arguments:
#
# - 1: the current (sub)command's count of positional arguments
#
# required variables:
#
# - repeating_flags: the repeating flags that the current (sub)command can accept
# - non_repeating_flags: the non-repeating flags that the current (sub)command can accept
# - repeating_options: the repeating options that the current (sub)command can accept
# - non_repeating_options: the non-repeating options that the current (sub)command can accept
# - positional_number: value ignored
# - unparsed_words: unparsed words from the current command line
#
# modified variables:
#
# - non_repeating_flags: remove flags for this (sub)command that are already on the command line
# - non_repeating_options: remove options for this (sub)command that are already on the command line
# - positional_number: set to the current positional number
# - unparsed_words: remove all flags, options, and option values for this (sub)command
__cohort_offer_flags_options() {
    local -ir positional_count="${1}"
    positional_number=0

    local was_flag_option_terminator_seen=false
    local is_parsing_option_value=false

    local -ar unparsed_word_indices=("${!unparsed_words[@]}")
    local -i word_index
    for word_index in "${unparsed_word_indices[@]}"; do
        if "${is_parsing_option_value}"; then
            # This word is an option value:
            # Reset marker for next word iff not currently the last word
            [[ "${word_index}" -ne "${unparsed_word_indices[${#unparsed_word_indices[@]} - 1]}" ]] && is_parsing_option_value=false
            unset "unparsed_words[${word_index}]"
            # Do not process this word as a flag or an option
            continue
        fi

        local word="${unparsed_words["${word_index}"]}"
        if ! "${was_flag_option_terminator_seen}"; then
            case "${word}" in
            --)
                unset "unparsed_words[${word_index}]"
                # by itself -- is a flag/option terminator, but if it is the last word, it is the start of a completion
                if [[ "${word_index}" -ne "${unparsed_word_indices[${#unparsed_word_indices[@]} - 1]}" ]]; then
                    was_flag_option_terminator_seen=true
                fi
                continue
                ;;
            -*)
                # ${word} is a flag or an option
                # If ${word} is an option, mark that the next word to be parsed is an option value
                local option
                for option in "${repeating_options[@]}" "${non_repeating_options[@]}"; do
                    [[ "${word}" = "${option}" ]] && is_parsing_option_value=true && break
                done

                # Remove ${word} from ${non_repeating_flags} or ${non_repeating_options} so it isn't offered again
                local not_found=true
                local -i index
                for index in "${!non_repeating_flags[@]}"; do
                    if [[ "${non_repeating_flags[${index}]}" = "${word}" ]]; then
                        unset "non_repeating_flags[${index}]"
                        non_repeating_flags=("${non_repeating_flags[@]}")
                        not_found=false
                        break
                    fi
                done
                if "${not_found}"; then
                    for index in "${!non_repeating_flags[@]}"; do
                        if [[ "${non_repeating_flags[${index}]}" = "${word}" ]]; then
                            unset "non_repeating_flags[${index}]"
                            non_repeating_flags=("${non_repeating_flags[@]}")
                            break
                        fi
                    done
                fi
                unset "unparsed_words[${word_index}]"
                continue
                ;;
            esac
        fi

        # ${word} is neither a flag, nor an option, nor an option value
        if [[ "${positional_number}" -lt "${positional_count}" || "${positional_count}" -lt 0 ]]; then
            # ${word} is a positional
            ((positional_number++))
            unset "unparsed_words[${word_index}]"
        else
            if [[ -z "${word}" ]]; then
                # Could be completing a flag, option, or subcommand
                positional_number=-1
            else
                # ${word} is a subcommand or invalid, so stop processing this (sub)command
                positional_number=-2
            fi
            break
        fi
    done

    unparsed_words=("${unparsed_words[@]}")

    if\
        ! "${was_flag_option_terminator_seen}"\
        && ! "${is_parsing_option_value}"\
        && [[ ("${cur}" = -* && "${positional_number}" -ge 0) || "${positional_number}" -eq -1 ]]
    then
        COMPREPLY+=($(compgen -W "${repeating_flags[*]} ${non_repeating_flags[*]} ${repeating_options[*]} ${non_repeating_options[*]}" -- "${cur}"))
    fi
}

__cohort_add_completions() {
    local completion
    while IFS='' read -r completion; do
        COMPREPLY+=("${completion}")
    done < <(IFS=$'\n' compgen "${@}" -- "${cur}")
}

__cohort_custom_complete() {
    if [[ -n "${cur}" || -z ${COMP_WORDS[${COMP_CWORD}]} || "${COMP_LINE:${COMP_POINT}:1}" != ' ' ]]; then
        local -ar words=("${COMP_WORDS[@]}")
    else
        local -ar words=("${COMP_WORDS[@]::${COMP_CWORD}}" '' "${COMP_WORDS[@]:${COMP_CWORD}}")
    fi

    "${COMP_WORDS[0]}" "${@}" "${words[@]}"
}

_cohort() {
    local state
    state="$(shopt -p;shopt -po)"
    trap "${state//$'\n'/;}" RETURN
    shopt -s extglob
    set +o history +o posix

    local -xr SAP_SHELL=bash
    local -x SAP_SHELL_VERSION
    SAP_SHELL_VERSION="$(IFS='.';printf %s "${BASH_VERSINFO[*]}")"
    local -r SAP_SHELL_VERSION

    local -r cur="${2}"
    local -r prev="${3}"

    local -i positional_number
    local -a unparsed_words=("${COMP_WORDS[@]:1:${COMP_CWORD}}")

    local -a repeating_flags=()
    local -a non_repeating_flags=(-h --help)
    local -a repeating_options=()
    local -a non_repeating_options=()
    __cohort_offer_flags_options 0

    # Offer subcommand / subcommand argument completions
    local -r subcommand="${unparsed_words[0]}"
    unset 'unparsed_words[0]'
    unparsed_words=("${unparsed_words[@]}")
    case "${subcommand}" in
    server|cohort|set|run|sleep|version|quit|export|status|history|snapshots|summary|diff|show|watermarks|serve|advance|record|verify|replay|expect|keygen|view|sql|report|clear|help)
        # Offer subcommand argument completions
        "_cohort_${subcommand}"
        ;;
    *)
        # Offer subcommand completions
        COMPREPLY+=($(compgen -W 'server cohort set run sleep version quit export status history snapshots summary diff show watermarks serve advance record verify replay expect keygen view sql report clear help' -- "${cur}"))
        ;;
    esac
}

_cohort_server() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=()
    __cohort_offer_flags_options 0

    # Offer subcommand / subcommand argument completions
    local -r subcommand="${unparsed_words[0]}"
    unset 'unparsed_words[0]'
    unparsed_words=("${unparsed_words[@]}")
    case "${subcommand}" in
    add|list|show|set|remove|rename|check)
        # Offer subcommand argument completions
        "_cohort_server_${subcommand}"
        ;;
    *)
        # Offer subcommand completions
        COMPREPLY+=($(compgen -W 'add list show set remove rename check' -- "${cur}"))
        ;;
    esac
}

_cohort_server_add() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=(--auth --token-env --token-file --kickoff --client-id --key --alg --kid --scope --token-url --connect-timeout)
    __cohort_offer_flags_options 2

    # Offer option value completions
    case "${prev}" in
    '--auth')
        __cohort_add_completions -W 'none'$'\n''bearer'$'\n''smart'
        return
        ;;
    '--token-env')
        return
        ;;
    '--token-file')
        return
        ;;
    '--kickoff')
        __cohort_add_completions -W 'get'$'\n''post'
        return
        ;;
    '--client-id')
        return
        ;;
    '--key')
        return
        ;;
    '--alg')
        return
        ;;
    '--kid')
        return
        ;;
    '--scope')
        return
        ;;
    '--token-url')
        return
        ;;
    '--connect-timeout')
        return
        ;;
    esac
}

_cohort_server_list() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=(--format)
    __cohort_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--format')
        __cohort_add_completions -W 'table'$'\n''plain'$'\n''json'$'\n''csv'
        return
        ;;
    esac
}

_cohort_server_show() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=(--format)
    __cohort_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--format')
        __cohort_add_completions -W 'table'$'\n''plain'$'\n''json'$'\n''csv'
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __cohort_add_completions -W "$(__cohort_custom_complete ---completion server show -- positional@0 "${COMP_CWORD}" "$(__cohort_cursor_index_in_current_word)")"
        return
        ;;
    esac
}

_cohort_server_set() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=(--connect-timeout --kickoff)
    __cohort_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--connect-timeout')
        return
        ;;
    '--kickoff')
        __cohort_add_completions -W 'get'$'\n''post'
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __cohort_add_completions -W "$(__cohort_custom_complete ---completion server set -- positional@0 "${COMP_CWORD}" "$(__cohort_cursor_index_in_current_word)")"
        return
        ;;
    esac
}

_cohort_server_remove() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=()
    __cohort_offer_flags_options 1

    # Offer positional completions
    case "${positional_number}" in
    1)
        __cohort_add_completions -W "$(__cohort_custom_complete ---completion server remove -- positional@0 "${COMP_CWORD}" "$(__cohort_cursor_index_in_current_word)")"
        return
        ;;
    esac
}

_cohort_server_rename() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=()
    __cohort_offer_flags_options 2

    # Offer positional completions
    case "${positional_number}" in
    1)
        __cohort_add_completions -W "$(__cohort_custom_complete ---completion server rename -- positional@0 "${COMP_CWORD}" "$(__cohort_cursor_index_in_current_word)")"
        return
        ;;
    esac
}

_cohort_server_check() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=(--format)
    __cohort_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--format')
        __cohort_add_completions -W 'table'$'\n''plain'$'\n''json'$'\n''csv'
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __cohort_add_completions -W "$(__cohort_custom_complete ---completion server check -- positional@0 "${COMP_CWORD}" "$(__cohort_cursor_index_in_current_word)")"
        return
        ;;
    esac
}

_cohort_cohort() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=()
    __cohort_offer_flags_options 0

    # Offer subcommand / subcommand argument completions
    local -r subcommand="${unparsed_words[0]}"
    unset 'unparsed_words[0]'
    unparsed_words=("${unparsed_words[@]}")
    case "${subcommand}" in
    add|set|list|show|remove|rename)
        # Offer subcommand argument completions
        "_cohort_cohort_${subcommand}"
        ;;
    *)
        # Offer subcommand completions
        COMPREPLY+=($(compgen -W 'add set list show remove rename' -- "${cur}"))
        ;;
    esac
}

_cohort_cohort_add() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=(--type-filter)
    non_repeating_options=(--server --group --types --elements --note)
    __cohort_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--server')
        __cohort_add_completions -W "$(__cohort_custom_complete ---completion cohort add -- --server "${COMP_CWORD}" "$(__cohort_cursor_index_in_current_word)")"
        return
        ;;
    '--group')
        return
        ;;
    '--types')
        return
        ;;
    '--type-filter')
        return
        ;;
    '--elements')
        return
        ;;
    '--note')
        return
        ;;
    esac
}

_cohort_cohort_set() {
    repeating_flags=()
    non_repeating_flags=(--no-type-filter -h --help)
    repeating_options=(--type-filter)
    non_repeating_options=(--types --elements)
    __cohort_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--types')
        return
        ;;
    '--type-filter')
        return
        ;;
    '--elements')
        return
        ;;
    esac
}

_cohort_cohort_list() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=(--format)
    __cohort_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--format')
        __cohort_add_completions -W 'table'$'\n''plain'$'\n''json'$'\n''csv'
        return
        ;;
    esac
}

_cohort_cohort_show() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=(--format)
    __cohort_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--format')
        __cohort_add_completions -W 'table'$'\n''plain'$'\n''json'$'\n''csv'
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __cohort_add_completions -W "$(__cohort_custom_complete ---completion cohort show -- positional@0 "${COMP_CWORD}" "$(__cohort_cursor_index_in_current_word)")"
        return
        ;;
    esac
}

_cohort_cohort_remove() {
    repeating_flags=()
    non_repeating_flags=(--force -h --help)
    repeating_options=()
    non_repeating_options=()
    __cohort_offer_flags_options 1

    # Offer positional completions
    case "${positional_number}" in
    1)
        __cohort_add_completions -W "$(__cohort_custom_complete ---completion cohort remove -- positional@0 "${COMP_CWORD}" "$(__cohort_cursor_index_in_current_word)")"
        return
        ;;
    esac
}

_cohort_cohort_rename() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=()
    __cohort_offer_flags_options 2

    # Offer positional completions
    case "${positional_number}" in
    1)
        __cohort_add_completions -W "$(__cohort_custom_complete ---completion cohort rename -- positional@0 "${COMP_CWORD}" "$(__cohort_cursor_index_in_current_word)")"
        return
        ;;
    esac
}

_cohort_set() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=()
    __cohort_offer_flags_options 2
}

_cohort_run() {
    repeating_flags=()
    non_repeating_flags=(--echo --record -h --help)
    repeating_options=()
    non_repeating_options=()
    __cohort_offer_flags_options 1
}

_cohort_sleep() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=()
    __cohort_offer_flags_options 1
}

_cohort_version() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=()
    __cohort_offer_flags_options 0
}

_cohort_quit() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=()
    __cohort_offer_flags_options 0
}

_cohort_export() {
    repeating_flags=()
    non_repeating_flags=(--incremental --full --resume --cancel --reconcile --accept-partial --keep-failed --dry-run -h --help)
    repeating_options=(--type --type-filter --allow-origin)
    non_repeating_options=(--since --until --elements --output-format --parallel --format)
    __cohort_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--since')
        return
        ;;
    '--until')
        return
        ;;
    '--type')
        __cohort_add_completions -W "$(__cohort_custom_complete ---completion export -- --type "${COMP_CWORD}" "$(__cohort_cursor_index_in_current_word)")"
        return
        ;;
    '--type-filter')
        return
        ;;
    '--elements')
        return
        ;;
    '--output-format')
        return
        ;;
    '--parallel')
        return
        ;;
    '--allow-origin')
        return
        ;;
    '--format')
        __cohort_add_completions -W 'table'$'\n''plain'$'\n''json'$'\n''csv'
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __cohort_add_completions -W "$(__cohort_custom_complete ---completion export -- positional@0 "${COMP_CWORD}" "$(__cohort_cursor_index_in_current_word)")"
        return
        ;;
    esac
}

_cohort_status() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=(--format)
    __cohort_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--format')
        __cohort_add_completions -W 'table'$'\n''plain'$'\n''json'$'\n''csv'
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __cohort_add_completions -W "$(__cohort_custom_complete ---completion status -- positional@0 "${COMP_CWORD}" "$(__cohort_cursor_index_in_current_word)")"
        return
        ;;
    esac
}

_cohort_history() {
    repeating_flags=()
    non_repeating_flags=(--chart -h --help)
    repeating_options=()
    non_repeating_options=(--format)
    __cohort_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--format')
        __cohort_add_completions -W 'table'$'\n''plain'$'\n''json'$'\n''csv'
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __cohort_add_completions -W "$(__cohort_custom_complete ---completion history -- positional@0 "${COMP_CWORD}" "$(__cohort_cursor_index_in_current_word)")"
        return
        ;;
    esac
}

_cohort_snapshots() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=(--format)
    __cohort_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--format')
        __cohort_add_completions -W 'table'$'\n''plain'$'\n''json'$'\n''csv'
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __cohort_add_completions -W "$(__cohort_custom_complete ---completion snapshots -- positional@0 "${COMP_CWORD}" "$(__cohort_cursor_index_in_current_word)")"
        return
        ;;
    esac
}

_cohort_summary() {
    repeating_flags=()
    non_repeating_flags=(--chart -h --help)
    repeating_options=()
    non_repeating_options=(--at --by --format)
    __cohort_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--at')
        return
        ;;
    '--by')
        return
        ;;
    '--format')
        __cohort_add_completions -W 'table'$'\n''plain'$'\n''json'$'\n''csv'
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __cohort_add_completions -W "$(__cohort_custom_complete ---completion summary -- positional@0 "${COMP_CWORD}" "$(__cohort_cursor_index_in_current_word)")"
        return
        ;;
    esac
}

_cohort_diff() {
    repeating_flags=()
    non_repeating_flags=(--ids -h --help)
    repeating_options=()
    non_repeating_options=(--type --format)
    __cohort_offer_flags_options 3

    # Offer option value completions
    case "${prev}" in
    '--type')
        __cohort_add_completions -W "$(__cohort_custom_complete ---completion diff -- --type "${COMP_CWORD}" "$(__cohort_cursor_index_in_current_word)")"
        return
        ;;
    '--format')
        __cohort_add_completions -W 'table'$'\n''plain'$'\n''json'$'\n''csv'
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __cohort_add_completions -W "$(__cohort_custom_complete ---completion diff -- positional@0 "${COMP_CWORD}" "$(__cohort_cursor_index_in_current_word)")"
        return
        ;;
    esac
}

_cohort_show() {
    repeating_flags=()
    non_repeating_flags=(--versions -h --help)
    repeating_options=()
    non_repeating_options=(--at --format)
    __cohort_offer_flags_options 2

    # Offer option value completions
    case "${prev}" in
    '--at')
        return
        ;;
    '--format')
        __cohort_add_completions -W 'table'$'\n''plain'$'\n''json'$'\n''csv'
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __cohort_add_completions -W "$(__cohort_custom_complete ---completion show -- positional@0 "${COMP_CWORD}" "$(__cohort_cursor_index_in_current_word)")"
        return
        ;;
    esac
}

_cohort_watermarks() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=(--format)
    __cohort_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--format')
        __cohort_add_completions -W 'table'$'\n''plain'$'\n''json'$'\n''csv'
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __cohort_add_completions -W "$(__cohort_custom_complete ---completion watermarks -- positional@0 "${COMP_CWORD}" "$(__cohort_cursor_index_in_current_word)")"
        return
        ;;
    esac
}

_cohort_serve() {
    repeating_flags=()
    non_repeating_flags=(--no-deleted --ignore-patient --background -h --help)
    repeating_options=(--smart-client)
    non_repeating_options=(--port --host --patients --seed --flavor --auth --bearer-token --bearer-token-env --bearer-token-file --token-lifetime --data --state --fault --polls --resources-per-file --start-time --exit-after)
    __cohort_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--port')
        return
        ;;
    '--host')
        return
        ;;
    '--patients')
        return
        ;;
    '--seed')
        return
        ;;
    '--flavor')
        __cohort_add_completions -W 'standard'$'\n''netsmart'
        return
        ;;
    '--auth')
        __cohort_add_completions -W 'none'$'\n''bearer'$'\n''smart'
        return
        ;;
    '--bearer-token')
        return
        ;;
    '--bearer-token-env')
        return
        ;;
    '--bearer-token-file')
        return
        ;;
    '--smart-client')
        return
        ;;
    '--token-lifetime')
        return
        ;;
    '--data')
        return
        ;;
    '--state')
        return
        ;;
    '--fault')
        return
        ;;
    '--polls')
        return
        ;;
    '--resources-per-file')
        return
        ;;
    '--start-time')
        return
        ;;
    '--exit-after')
        return
        ;;
    esac
}

_cohort_advance() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=(--days --format)
    __cohort_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--days')
        return
        ;;
    '--format')
        __cohort_add_completions -W 'table'$'\n''plain'$'\n''json'$'\n''csv'
        return
        ;;
    esac
}

_cohort_record() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=()
    __cohort_offer_flags_options 2
}

_cohort_verify() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=(--format)
    __cohort_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--format')
        __cohort_add_completions -W 'table'$'\n''plain'$'\n''json'$'\n''csv'
        return
        ;;
    esac
}

_cohort_replay() {
    repeating_flags=()
    non_repeating_flags=(--frozen -h --help)
    repeating_options=()
    non_repeating_options=()
    __cohort_offer_flags_options 1
}

_cohort_expect() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=()
    __cohort_offer_flags_options -1
}

_cohort_keygen() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=(--alg --out)
    __cohort_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--alg')
        return
        ;;
    '--out')
        return
        ;;
    esac
}

_cohort_view() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=()
    __cohort_offer_flags_options 0

    # Offer subcommand / subcommand argument completions
    local -r subcommand="${unparsed_words[0]}"
    unset 'unparsed_words[0]'
    unparsed_words=("${unparsed_words[@]}")
    case "${subcommand}" in
    run|save|list|show|materialize|diff)
        # Offer subcommand argument completions
        "_cohort_view_${subcommand}"
        ;;
    *)
        # Offer subcommand completions
        COMPREPLY+=($(compgen -W 'run save list show materialize diff' -- "${cur}"))
        ;;
    esac
}

_cohort_view_run() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=(--at --format --out)
    __cohort_offer_flags_options 2

    # Offer option value completions
    case "${prev}" in
    '--at')
        return
        ;;
    '--format')
        __cohort_add_completions -W 'table'$'\n''plain'$'\n''csv'$'\n''json'$'\n''ndjson'
        return
        ;;
    '--out')
        return
        ;;
    esac
}

_cohort_view_save() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=()
    __cohort_offer_flags_options 2
}

_cohort_view_list() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=(--format)
    __cohort_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--format')
        __cohort_add_completions -W 'table'$'\n''plain'$'\n''json'$'\n''csv'
        return
        ;;
    esac
}

_cohort_view_show() {
    repeating_flags=()
    non_repeating_flags=(--json -h --help)
    repeating_options=()
    non_repeating_options=(--format)
    __cohort_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--format')
        __cohort_add_completions -W 'table'$'\n''plain'$'\n''json'$'\n''csv'
        return
        ;;
    esac
}

_cohort_view_materialize() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=(--at --format)
    __cohort_offer_flags_options 2

    # Offer option value completions
    case "${prev}" in
    '--at')
        return
        ;;
    '--format')
        __cohort_add_completions -W 'table'$'\n''plain'$'\n''json'$'\n''csv'
        return
        ;;
    esac
}

_cohort_view_diff() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=(--format)
    __cohort_offer_flags_options 4

    # Offer option value completions
    case "${prev}" in
    '--format')
        __cohort_add_completions -W 'table'$'\n''plain'$'\n''json'$'\n''csv'
        return
        ;;
    esac
}

_cohort_sql() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=(--format)
    __cohort_offer_flags_options 2

    # Offer option value completions
    case "${prev}" in
    '--format')
        __cohort_add_completions -W 'table'$'\n''plain'$'\n''json'$'\n''csv'
        return
        ;;
    esac
}

_cohort_report() {
    repeating_flags=()
    non_repeating_flags=(--open -h --help)
    repeating_options=()
    non_repeating_options=(--out)
    __cohort_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--out')
        __cohort_add_completions -o plusdirs -fX '!*.@(html)'
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __cohort_add_completions -W "$(__cohort_custom_complete ---completion report -- positional@0 "${COMP_CWORD}" "$(__cohort_cursor_index_in_current_word)")"
        return
        ;;
    esac
}

_cohort_clear() {
    repeating_flags=()
    non_repeating_flags=(-h --help)
    repeating_options=()
    non_repeating_options=()
    __cohort_offer_flags_options 0
}

_cohort_help() {
    :
}

complete -o filenames -F _cohort cohort
