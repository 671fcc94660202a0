# bash completion for keysat-deliver (its options are parsed by hand, so this is written by hand)
_keysat_deliver() {
    local cur prev
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    case $prev in
        --db|--lock-file|--metrics-file|--ca-file|--kick-file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --log-level) COMPREPLY=($(compgen -W "error warn info debug" -- "$cur")); return ;;
        --busy-timeout|--wait|--concurrency|--per-endpoint|--breaker|--max-runtime|--timeout|--connect-timeout|--limit|--allow-network|--disable-after) return ;;
    esac
    COMPREPLY=($(compgen -W "--db --busy-timeout --lock-file --wait --concurrency --per-endpoint --breaker
        --max-runtime --timeout --connect-timeout --limit --allow-network --allow-private-networks --ca-file
        --https-only --disable-after --metrics-file --kick-file --log-level --dry-run --verbose --json
        --version --help" -- "$cur"))
}
complete -F _keysat_deliver keysat-deliver
