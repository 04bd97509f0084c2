# bash completion for fogport. It holds no list of commands or options: it
# asks the binary (`fogport __complete WORDS...`), which reads them from the
# commands' own help texts, so new commands and options complete as soon as
# their help says so.
_fogport() {
    local cur=${COMP_WORDS[COMP_CWORD]} prog=${COMP_WORDS[0]} line
    local -a words=("${COMP_WORDS[@]:1:COMP_CWORD}")
    COMPREPLY=()
    command -v "$prog" >/dev/null 2>&1 || prog=fogport
    local out
    out=$("$prog" __complete "${words[@]}" 2>/dev/null) || return 0
    case $out in
    __files__)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        ;;
    __dirs__)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
        ;;
    *)
        while IFS= read -r line; do
            [[ -n $line && $line == "$cur"* ]] && COMPREPLY+=("$line")
        done <<<"$out"
        ;;
    esac
    return 0
}
complete -F _fogport fogport
