# docs/configuration.md's table of keys as roff, for fogport.conf(5): the
# manual page says what the reference says.
function roff(s) {
    gsub(/\\/, "\\e", s)
    gsub(/-/, "\\-", s)
    while (match(s, /`[^`]*`/))
        s = substr(s, 1, RSTART - 1) "\\fB" substr(s, RSTART + 1, RLENGTH - 2) "\\fR" \
            substr(s, RSTART + RLENGTH)
    return s
}
BEGIN { FS = " [|] " }
/^[|] [a-z_]+ [|] / && $1 != "| section" {
    section = substr($1, 3)
    meaning = $4
    sub(/ [|]$/, "", meaning)
    if (section != last) {
        printf ".SS [%s]\n", section
        last = section
    }
    # "\&" keeps a line that starts with a dot from reading as a request
    printf ".TP\n.B %s\n\\&%s\n", roff($2), roff(meaning)
    if ($3 != "none") printf ".br\nDefault: %s.\n", roff($3)
}
