/* Help, the command list and shell completion, all read from the commands'
 * help texts: their usage lines are the one statement of each command's
 * sub-commands and options, so what `--help` shows, what `fogport help`
 * lists and what bash completes cannot disagree. */
#include "cli/help.h"

#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

/* One usage line (with its continuation lines) of a help text. */
struct usage {
    const char *start; /* the line, after "usage:" and indentation */
    size_t len;        /* through the last continuation line */
    char path[4][24];  /* sub-command words ("token", "create"); may hold "add|passwd" */
    int depth;
};

#define MAX_USAGES 16

static const struct fp_cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < fp_cli_ncommands; i++)
        if (!strcmp(fp_cli_commands[i].name, name)) return &fp_cli_commands[i];
    return NULL;
}

/* Is word one of the alternatives of pattern ("add|passwd")? */
static bool alt_has(const char *pattern, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = pattern; *p;) {
        size_t n = strcspn(p, "|");
        if (n == wl && !strncmp(p, word, n)) return true;
        p += n + (p[n] == '|');
    }
    return false;
}

static bool is_subword(const char *w, size_t n)
{
    if (!n || w[0] < 'a' || w[0] > 'z') return false;
    for (size_t i = 0; i < n; i++)
        if (!((w[i] >= 'a' && w[i] <= 'z') || (w[i] >= '0' && w[i] <= '9') || w[i] == '-' ||
              w[i] == '|'))
            return false;
    return true;
}

/* The usage lines of cmd's help text that belong to cmd (a text may serve
 * two commands, as recall's serves unrecall). */
static int parse_usages(const struct fp_cli_command *cmd, struct usage *u, int max)
{
    const char *t = cmd->help;
    const char *end = strstr(t, "\n\n");
    if (!end) end = t + strlen(t);
    int n = 0;
    bool in_cmd = false;
    for (const char *line = t; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol) eol = end;
        const char *s = line;
        if (!strncmp(s, "usage:", 6)) s += 6;
        while (*s == ' ')
            s++;
        if (!strncmp(s, "fogport ", 8)) {
            const char *w = s + 8;
            size_t wl = strcspn(w, " \n");
            in_cmd = wl == strlen(cmd->name) && !strncmp(w, cmd->name, wl) && n < max;
            if (in_cmd) {
                struct usage *x = &u[n++];
                memset(x, 0, sizeof *x);
                x->start = s;
                for (w += wl; *w == ' ' && x->depth < 4;) {
                    w++;
                    size_t l = strcspn(w, " \n");
                    if (!is_subword(w, l) || l >= sizeof x->path[0]) break;
                    memcpy(x->path[x->depth++], w, l);
                    w += l;
                }
            }
        }
        if (in_cmd) u[n - 1].len = (size_t)(eol - u[n - 1].start);
        line = eol < end ? eol + 1 : end;
    }
    return n;
}

/* Keep the usages whose first depth words match words; returns how many. */
static int match_path(struct usage *u, int n, char **words, int nwords)
{
    int kept = 0;
    for (int i = 0; i < n; i++) {
        bool ok = u[i].depth >= nwords;
        for (int d = 0; ok && d < nwords; d++)
            ok = alt_has(u[i].path[d], words[d]);
        if (ok) u[kept++] = u[i];
    }
    return kept;
}

/* How many of words (after the command) name sub-commands: the longest
 * prefix some usage line has. */
static int sub_depth(struct usage *u, int n, char **words, int nwords)
{
    int depth = 0;
    while (depth < nwords && depth < 4) {
        struct usage tmp[MAX_USAGES];
        memcpy(tmp, u, sizeof(struct usage) * (size_t)n);
        if (match_path(tmp, n, words, depth + 1) == 0) break;
        depth++;
    }
    return depth;
}

/* Does the example (its first line) run `fogport CMD PATH...`? */
static bool example_runs(const char *line, size_t len, const char *cmd, char **words, int nwords)
{
    char want[160];
    int off = snprintf(want, sizeof want, "fogport %s", cmd);
    for (int i = 0; i < nwords && off > 0 && (size_t)off < sizeof want; i++)
        off += snprintf(want + off, sizeof want - (size_t)off, " %s", words[i]);
    size_t wl = strlen(want);
    for (const char *p = line; p + wl <= line + len; p++)
        if (!strncmp(p, want, wl) && (p + wl == line + len || p[wl] == ' ')) return true;
    return false;
}

static void print_examples(const char *ex, const char *cmd, char **words, int nwords, bool all)
{
    /* an example is a line "  fogport ..." (or "  VAR=x fogport", "  echo .. |")
     * and the more-indented lines after it (continuations, output) */
    bool show = false;
    for (const char *line = ex; *line;) {
        size_t len = strcspn(line, "\n");
        bool first = len > 2 && line[0] == ' ' && line[1] == ' ' && line[2] != ' ';
        bool command = first && memmem(line, len, "fogport ", 8) != NULL;
        if (command) show = all || example_runs(line, len, cmd, words, nwords);
        if (show) printf("%.*s\n", (int)len, line);
        line += len + (line[len] == '\n');
    }
}

/* Print the help of cmd (its sub-command words in words): its usage lines,
 * what it does, and its examples (those running that sub-command, when
 * there are). */
static void print_usage(FILE *f, const struct fp_cli_command *cmd, char **words, int nwords)
{
    struct usage u[MAX_USAGES];
    int n = match_path(u, parse_usages(cmd, u, MAX_USAGES), words, nwords);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%.*s\n", i ? "       " : "usage: ", (int)u[i].len, u[i].start);
}

static void print_help(const struct fp_cli_command *cmd, char **words, int nwords)
{
    print_usage(stdout, cmd, words, nwords);
    const char *body = strstr(cmd->help, "\n\n");
    const char *ex = strstr(cmd->help, "\nexamples:\n");
    if (!ex) ex = strstr(cmd->help, "\nexample:\n");
    if (body && (!ex || body < ex)) {
        const char *stop = ex ? ex : body + strlen(body);
        printf("%.*s", (int)(stop - body - 1), body + 1);
    }
    if (!ex) return;
    ex = strchr(ex + 1, '\n') + 1;
    printf("\nexamples:\n");
    bool any = false;
    for (const char *line = ex; *line && !any;) {
        size_t len = strcspn(line, "\n");
        any = memmem(line, len, "fogport ", 8) && example_runs(line, len, cmd->name, words, nwords);
        line += len + (line[len] == '\n');
    }
    print_examples(ex, cmd->name, words, nwords, !any);
}

void fp_cli_help(const char *name)
{
    const struct fp_cli_command *cmd = find_command(name);
    if (cmd && cmd->help) print_help(cmd, NULL, 0);
}

int fp_cli_usage_error(const char *name, const char *msg)
{
    fprintf(stderr, "fogport %s: %s\n", name, msg);
    const struct fp_cli_command *cmd = find_command(name);
    if (cmd && cmd->help) print_usage(stderr, cmd, NULL, 0);
    fprintf(stderr, "(see 'fogport %s --help')\n", name);
    return 2;
}

int fp_cli_help_for(int argc, char **argv)
{
    const struct fp_cli_command *cmd = find_command(argv[0]);
    if (!cmd || !cmd->help) return -1;
    struct usage u[MAX_USAGES];
    int n = parse_usages(cmd, u, MAX_USAGES);
    int depth = sub_depth(u, n, argv + 1, argc - 1);
    /* only right after the sub-command's words: later, "-h" may be an
     * option's argument (service create --cmd -h), and the command's own
     * option parsing knows */
    if (depth + 1 >= argc ||
        (strcmp(argv[depth + 1], "--help") != 0 && strcmp(argv[depth + 1], "-h") != 0))
        return -1;
    print_help(cmd, argv + 1, depth);
    return 0;
}

void fp_cli_usage(FILE *f)
{
    fprintf(f, "usage: fogport COMMAND [OPTIONS]\n\n"
               "fogport runs private OCI/Docker registries on cloud, fog and edge nodes.\n\n"
               "commands:\n");
    for (size_t i = 0; i < fp_cli_ncommands; i++)
        if (fp_cli_commands[i].summary)
            fprintf(f, "  %-12s %s\n", fp_cli_commands[i].name, fp_cli_commands[i].summary);
    fprintf(f, "\nRun 'fogport COMMAND --help' (or 'fogport COMMAND SUBCOMMAND --help') for its\n"
               "options and examples; 'man fogport' for the whole manual.\n");
}

/* Every command and sub-command, one a line: "node token create". */
static void list_commands(void)
{
    for (size_t i = 0; i < fp_cli_ncommands; i++) {
        const struct fp_cli_command *c = &fp_cli_commands[i];
        if (!c->summary) continue;
        printf("%s\n", c->name);
        struct usage u[MAX_USAGES];
        int n = c->help ? parse_usages(c, u, MAX_USAGES) : 0;
        char seen[MAX_USAGES * 2][96];
        int nseen = 0;
        for (int k = 0; k < n; k++) {
            /* each prefix of the path, each alternative of its last word */
            for (int d = 1; d <= u[k].depth; d++) {
                char prefix[72] = "";
                for (int j = 0; j < d - 1; j++)
                    snprintf(prefix + strlen(prefix), sizeof prefix - strlen(prefix), " %s",
                             u[k].path[j]);
                for (const char *p = u[k].path[d - 1]; *p;) {
                    size_t l = strcspn(p, "|");
                    char line[96];
                    snprintf(line, sizeof line, "%s%s %.*s", c->name, prefix, (int)l, p);
                    bool dup = false;
                    for (int s = 0; s < nseen && !dup; s++)
                        dup = !strcmp(seen[s], line);
                    if (!dup && nseen < MAX_USAGES * 2) {
                        snprintf(seen[nseen++], sizeof seen[0], "%s", line);
                        printf("%s\n", line);
                    }
                    p += l + (p[l] == '|');
                }
            }
        }
    }
}

/* The word after option opt in a usage line: its argument's name (FILE,
 * DIR, fog|edge), or "" when the option takes none. */
static void option_arg(const char *after, const char *lim, char *arg, size_t n)
{
    arg[0] = '\0';
    if (after >= lim || *after != ' ') return;
    after++;
    size_t l = 0;
    while (after + l < lim && l + 1 < n &&
           (strchr("|.:=_-", after[l]) || (after[l] >= 'A' && after[l] <= 'Z') ||
            (after[l] >= 'a' && after[l] <= 'z') || (after[l] >= '0' && after[l] <= '9')))
        l++;
    if (l && after[0] != '-' && after[0] != '|') {
        memcpy(arg, after, l);
        arg[l] = '\0';
    }
}

/* Each option of the usage lines: calls fn with its name and argument. */
static void each_option(const struct usage *u, int n,
                        void (*fn)(const char *opt, size_t len, const char *arg, void *ctx),
                        void *ctx)
{
    for (int i = 0; i < n; i++) {
        const char *lim = u[i].start + u[i].len;
        for (const char *p = u[i].start; (p = memmem(p, (size_t)(lim - p), "--", 2)); p += 2) {
            if (p > u[i].start && p[-1] != ' ' && p[-1] != '[' && p[-1] != '(') continue;
            size_t l = 2;
            while (p + l < lim && ((p[l] >= 'a' && p[l] <= 'z') || p[l] == '-'))
                l++;
            if (l == 2) continue;
            char arg[48];
            option_arg(p + l, lim, arg, sizeof arg);
            fn(p, l, arg, ctx);
        }
    }
}

struct complete_ctx {
    char seen[64][32];
    int nseen;
    const char *prev; /* the word before the one completed */
    const char *arg;  /* prev's argument name, when prev is an option that takes one */
    char argbuf[48];
    bool list; /* print the options */
};

static void complete_option(const char *opt, size_t len, const char *arg, void *vctx)
{
    struct complete_ctx *c = vctx;
    if (c->prev && strlen(c->prev) == len && !strncmp(c->prev, opt, len) && arg[0]) {
        snprintf(c->argbuf, sizeof c->argbuf, "%s", arg);
        c->arg = c->argbuf;
    }
    if (!c->list) return;
    for (int i = 0; i < c->nseen; i++)
        if (strlen(c->seen[i]) == len && !strncmp(c->seen[i], opt, len)) return;
    if (c->nseen < 64 && len < sizeof c->seen[0]) {
        memcpy(c->seen[c->nseen], opt, len);
        c->seen[c->nseen++][len] = '\0';
        printf("%.*s\n", (int)len, opt);
    }
}

/* What completes an option's argument: files for FILE, PREFIX and the
 * like, directories for DIR, the words of a choice (fog|edge). */
static void complete_arg(const char *arg)
{
    if (strchr(arg, '|') && arg[0] >= 'a' && arg[0] <= 'z') {
        for (const char *p = arg; *p;) {
            size_t l = strcspn(p, "|");
            printf("%.*s\n", (int)l, p);
            p += l + (p[l] == '|');
        }
    } else if (!strcmp(arg, "DIR")) {
        printf("__dirs__\n");
    } else if (strstr(arg, "FILE") || strstr(arg, "PREFIX") || strstr(arg, "HTPASSWD") ||
               strstr(arg, "LOG") || strstr(arg, ".pem") || !strcmp(arg, "PATH")) {
        printf("__files__\n");
    }
}

/* `fogport __complete WORD... CURRENT`: the candidates for CURRENT, one a
 * line; "__files__" or "__dirs__" asks the shell to complete paths. */
static void list_names(void)
{
    for (size_t i = 0; i < fp_cli_ncommands; i++)
        if (fp_cli_commands[i].summary) printf("%s\n", fp_cli_commands[i].name);
}

static int complete(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[0], "help")) { /* fogport help COMMAND */
        list_names();
        return 0;
    }
    if (argc <= 1) {
        list_names();
        printf("help\n");
        return 0;
    }
    const struct fp_cli_command *cmd = find_command(argv[0]);
    if (!cmd || !cmd->help) return 0;
    struct usage u[MAX_USAGES];
    int n = parse_usages(cmd, u, MAX_USAGES);
    /* the words typed so far (not the current one): sub-commands, options,
     * their arguments and positional arguments */
    char *subs[4];
    int nsubs = 0;
    bool positional = false;
    for (int i = 1; i < argc - 1; i++) {
        if (argv[i][0] == '-') continue;
        struct complete_ctx probe = {.prev = argv[i - 1]};
        each_option(u, n, complete_option, &probe);
        if (probe.arg) continue; /* the argument of the option before it */
        if (!positional && nsubs < 4) {
            subs[nsubs] = argv[i];
            struct usage tmp[MAX_USAGES];
            memcpy(tmp, u, sizeof u);
            if (match_path(tmp, n, subs, nsubs + 1) > 0) {
                nsubs++;
                continue;
            }
        }
        positional = true;
    }
    n = match_path(u, n, subs, nsubs);
    const char *cur = argv[argc - 1];
    struct complete_ctx c = {.prev = argc >= 3 ? argv[argc - 2] : NULL, .list = cur[0] == '-'};
    if (c.prev && c.prev[0] != '-') c.prev = NULL;
    each_option(u, n, complete_option, &c);
    if (c.arg) {
        complete_arg(c.arg);
        return 0;
    }
    if (c.list) {
        printf("--help\n");
        return 0;
    }
    if (positional) return 0;
    /* the next sub-command word */
    for (int i = 0; i < n; i++) {
        if (u[i].depth <= nsubs) continue;
        const char *w = u[i].path[nsubs];
        bool dup = false;
        for (int j = 0; j < i && !dup; j++)
            dup = u[j].depth > nsubs && !strcmp(u[j].path[nsubs], w);
        if (dup) continue;
        for (const char *p = w; *p;) {
            size_t l = strcspn(p, "|");
            printf("%.*s\n", (int)l, p);
            p += l + (p[l] == '|');
        }
    }
    return 0;
}

/* One line of help text as roff: backslashes and dashes escaped, a line
 * that would read as a request protected. */
static void roff_line(const char *s, size_t len)
{
    if (len && (s[0] == '.' || s[0] == '\'')) fputs("\\&", stdout);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\')
            fputs("\\e", stdout);
        else if (s[i] == '-')
            fputs("\\-", stdout);
        else
            putchar(s[i]);
    }
    putchar('\n');
}

/* Lines [p, stop) as roff: a paragraph of prose is filled, an indented
 * one (options, examples, output) kept as it is. */
static void roff_text(const char *p, const char *stop)
{
    while (p < stop) {
        while (p < stop && *p == '\n')
            p++;
        if (p >= stop) break;
        const char *par_end = strstr(p, "\n\n");
        if (!par_end || par_end > stop) par_end = stop;
        bool literal = p[0] == ' ';
        printf(literal ? ".PP\n.nf\n" : ".PP\n");
        for (const char *line = p; line < par_end;) {
            const char *eol = memchr(line, '\n', (size_t)(par_end - line));
            if (!eol) eol = par_end;
            const char *s = line;
            if (!literal)
                while (*s == ' ')
                    s++;
            roff_line(s, (size_t)(eol - s));
            line = eol + 1;
        }
        if (literal) printf(".fi\n");
        p = par_end;
    }
}

/* The COMMANDS section of the manual page (man/fogport.1.in): every
 * command's help text, as --help prints it. */
static void print_man(void)
{
    for (size_t i = 0; i < fp_cli_ncommands; i++) {
        const struct fp_cli_command *c = &fp_cli_commands[i];
        if (!c->summary || !c->help) continue;
        printf(".SS %s\n", c->name);
        roff_line(c->summary, strlen(c->summary));
        struct usage u[MAX_USAGES];
        int n = parse_usages(c, u, MAX_USAGES);
        printf(".PP\n.nf\n");
        for (int k = 0; k < n; k++) {
            /* continuation lines keep their indentation under "fogport" */
            for (const char *line = u[k].start; line < u[k].start + u[k].len;) {
                const char *eol = memchr(line, '\n', (size_t)(u[k].start + u[k].len - line));
                if (!eol) eol = u[k].start + u[k].len;
                const char *s = line == u[k].start ? line : line + 7;
                if (s > eol) s = eol;
                printf(line == u[k].start ? ".B " : "");
                roff_line(s, (size_t)(eol - s));
                line = eol + 1;
            }
        }
        printf(".fi\n");
        const char *body = strstr(c->help, "\n\n");
        const char *ex = strstr(c->help, "\nexamples:\n");
        if (!ex) ex = strstr(c->help, "\nexample:\n");
        if (body) roff_text(body, ex ? ex : body + strlen(body));
        if (!ex) continue;
        ex = strchr(ex + 1, '\n') + 1;
        printf(".PP\nExamples:\n.PP\n.nf\n.RS\n");
        for (const char *line = ex; *line;) {
            size_t len = strcspn(line, "\n");
            roff_line(line + (len >= 2 ? 2 : 0), len >= 2 ? len - 2 : 0);
            line += len + (line[len] == '\n');
        }
        printf(".RE\n.fi\n");
    }
}

int fp_cmd_help(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "--commands")) {
        list_commands();
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "--man")) {
        print_man();
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "--help") != 0 && strcmp(argv[1], "-h") != 0) {
        const struct fp_cli_command *cmd = find_command(argv[1]);
        if (!cmd || !cmd->help) {
            fprintf(stderr, "fogport: no command '%s' (see 'fogport help')\n", argv[1]);
            return 2;
        }
        struct usage u[MAX_USAGES];
        int n = parse_usages(cmd, u, MAX_USAGES);
        print_help(cmd, argv + 2, sub_depth(u, n, argv + 2, argc - 2));
        return 0;
    }
    fp_cli_usage(stdout);
    return 0;
}

int fp_cmd_complete(int argc, char **argv)
{
    return complete(argc - 1, argv + 1);
}
