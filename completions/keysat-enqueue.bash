# bash completion for keysat-enqueue (its options are parsed by hand, so this is written by hand)
_keysat_enqueue() {
    local cur prev
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    case $prev in
        --db|--data-file|--kick-file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --idempotency-key|--max-payload-bytes|--busy-timeout) return ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "--data-file --idempotency-key --json --kick --kick=file --kick=spawn --kick-file
            --max-payload-bytes --db --busy-timeout --version --help" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "license.issued license.revoked license.suspended machine.activated invoice.settled" -- "$cur"))
    fi
}
complete -F _keysat_enqueue keysat-enqueue
