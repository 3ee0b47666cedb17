/*
 * xarch native-leaf hook. Installed in place of one heavy leaf of the image's own
 * toolchain (cc1, cc1plus, as, ...); the original is kept beside it as
 * NAME.xarch-emulated. Built on the host with `gcc -static -O2`, so the kernel starts
 * it natively inside the emulated image: no emulated shell, no loader lookup.
 *
 * The hook finds its own path through /proc/self/exe and reads
 *   /opt/xarch/native/hooks/<that path>.conf
 * one directive a line:
 *   native=PATH         the relocated x86_64 leaf to exec (default mode)
 *   emulated=PATH       the image's original leaf (XARCH_NATIVE_TOOLS=0)
 *   nostdinc            append -nostdinc, then the sys=/cxx= directories below
 *   cxx=DIR             append -isystem DIR unless the arguments hold -nostdinc/-nostdinc++
 *   sys=DIR             append -isystem DIR unless the arguments hold -nostdinc
 *   arg=ARG             append ARG
 *   replace=OLD=NEW     pass NEW for an argument that is exactly OLD (OLD holds no '='):
 *                       the linker's target LTO plugin becomes the native one
 *   emulate-if=PREFIX   an argument starting with PREFIX (a target plugin, say) cannot
 *                       work natively: exec the emulated leaf for this call
 *   ident-native=TEXT   with ident-image: the native compiler's identification (what
 *   ident-image=TEXT    its `.ident` line quotes) differs from the image's own (Debian's
 *                       cross package has another version suffix): the native leaf's
 *                       assembly output gets the image's text in its `.ident` lines, so
 *                       objects are the same bytes, .comment included. The output is
 *                       the -o file (rewritten after the leaf exits) or standard output
 *                       (filtered through a pipe).
 *
 * XARCH_NATIVE_TOOLS: unset or 1 = native, 0 = emulated, anything else = an error.
 * A native leaf that is missing or cannot start is an error carrying the reason,
 * never a quiet fallback to the emulated one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CONF_ROOT /* -DCONF_ROOT=... only for the hook's own tests */
#define CONF_ROOT "/opt/xarch/native/hooks"
#endif
#define MAX_LINES 256
#define LINE_MAX_LEN 4096

static char self[LINE_MAX_LEN];

static void die(int code, const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "xarch native hook %s: ", self);
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    exit(code);
}

static int has_arg(int argc, char **argv, const char *want) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], want) == 0)
            return 1;
    return 0;
}

static int has_prefix_arg(int argc, char **argv, const char *prefix) {
    size_t n = strlen(prefix);
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], prefix, n) == 0)
            return 1;
    return 0;
}

/* One line of assembly with the native identification replaced by the image's, when it
 * is an .ident directive quoting exactly the native text. */
static void put_line(FILE *out, const char *line, const char *from, const char *to) {
    size_t n = strlen(from);
    if (strncmp(line, "\t.ident\t\"", 9) == 0 && strncmp(line + 9, from, n) == 0 &&
        line[9 + n] == '"') {
        fputs("\t.ident\t\"", out);
        fputs(to, out);
        fputs(line + 9 + n, out);
    } else {
        fputs(line, out);
    }
}

static void copy_lines(FILE *in, FILE *out, const char *from, const char *to) {
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, in) != -1)
        put_line(out, line, from, to);
    free(line);
}

/* Run the native leaf and give its assembly the image's .ident text. */
static int run_rewriting(const char *path, char **args, const char *from, const char *to) {
    const char *output = NULL;
    for (int i = 1; args[i] != NULL; i++)
        if (strcmp(args[i], "-o") == 0 && args[i + 1] != NULL)
            output = args[i + 1];
    int to_stdout = output == NULL || strcmp(output, "-") == 0;
    int fds[2];
    if (to_stdout && pipe(fds) != 0)
        die(1, "cannot make a pipe: %s%s", strerror(errno), "");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die(1, "cannot fork: %s%s", strerror(errno), "");
    if (pid == 0) {
        if (to_stdout) {
            dup2(fds[1], 1);
            close(fds[0]);
            close(fds[1]);
        }
        execv(path, args);
        fprintf(stderr, "xarch native hook %s: cannot run the native leaf %s: %s\n", self, path,
                strerror(errno));
        _exit(127);
    }
    if (to_stdout) {
        close(fds[1]);
        FILE *in = fdopen(fds[0], "r");
        if (in == NULL)
            die(1, "cannot read the native leaf's output: %s%s", strerror(errno), "");
        copy_lines(in, stdout, from, to);
        fclose(in);
        fflush(stdout);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            die(1, "cannot wait for the native leaf: %s%s", strerror(errno), "");
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code != 0 || to_stdout)
        return code;
    /* Rewrite the output file through a temporary one beside it. */
    char tmp[LINE_MAX_LEN + 32];
    snprintf(tmp, sizeof tmp, "%s.xarch-ident", output);
    FILE *in = fopen(output, "r");
    if (in == NULL)
        return 0; /* no assembly written (-fsyntax-only, say): nothing to rewrite */
    FILE *out = fopen(tmp, "w");
    if (out == NULL)
        die(1, "cannot write %s: %s", tmp, strerror(errno));
    copy_lines(in, out, from, to);
    fclose(in);
    if (fclose(out) != 0 || rename(tmp, output) != 0)
        die(1, "cannot replace %s: %s", output, strerror(errno));
    return 0;
}

int main(int argc, char **argv) {
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
    } else if (argc > 0 && argv[0][0] == '/' && strlen(argv[0]) < sizeof self) {
        /* no /proc (a bare chroot): the driver runs its leaves by absolute path */
        strcpy(self, argv[0]);
    } else {
        strcpy(self, argc > 0 ? argv[0] : "?");
        die(1, "cannot read /proc/self/exe (%s) to find its configuration%s", strerror(errno), "");
    }

    const char *mode = getenv("XARCH_NATIVE_TOOLS");
    int native = 1;
    if (mode == NULL || strcmp(mode, "1") == 0)
        native = 1;
    else if (strcmp(mode, "0") == 0)
        native = 0;
    else
        die(2,
            "XARCH_NATIVE_TOOLS=%s is not an allowed value; use 1 (native leaves, the "
            "default when unset) or 0 (the image's emulated leaves)%s",
            mode, "");

    char conf[LINE_MAX_LEN + 64];
    snprintf(conf, sizeof conf, "%s%s.conf", CONF_ROOT, self);
    FILE *f = fopen(conf, "r");
    if (f == NULL)
        die(1, "cannot read its configuration %s: %s", conf, strerror(errno));

    static char lines[MAX_LINES][LINE_MAX_LEN];
    int count = 0;
    const char *native_path = NULL, *emulated_path = NULL;
    const char *ident_native = NULL, *ident_image = NULL;
    while (count < MAX_LINES && fgets(lines[count], LINE_MAX_LEN, f) != NULL) {
        char *line = lines[count];
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '\0' || line[0] == '#')
            continue;
        if (strncmp(line, "native=", 7) == 0)
            native_path = line + 7;
        else if (strncmp(line, "emulated=", 9) == 0)
            emulated_path = line + 9;
        else if (strncmp(line, "ident-native=", 13) == 0)
            ident_native = line + 13;
        else if (strncmp(line, "ident-image=", 12) == 0)
            ident_image = line + 12;
        else if (strncmp(line, "emulate-if=", 11) == 0) {
            if (has_prefix_arg(argc, argv, line + 11))
                native = 0;
        }
        count++;
    }
    if (count == MAX_LINES && !feof(f))
        die(1, "%s has more than the %s directives a hook reads", conf, "256");
    fclose(f);
    if (native_path == NULL || emulated_path == NULL)
        die(1, "%s lacks a native= or emulated= line%s", conf, "");

    if (!native) {
        argv[0] = (char *)emulated_path;
        execv(emulated_path, argv);
        die(1, "cannot run the emulated leaf %s: %s", emulated_path, strerror(errno));
    }

    int nostdinc = has_arg(argc, argv, "-nostdinc");
    int nostdincxx = nostdinc || has_arg(argc, argv, "-nostdinc++");
    char **out = calloc((size_t)argc + 2 * MAX_LINES + 2, sizeof *out);
    if (out == NULL)
        die(1, "out of memory%s%s", "", "");
    int k = 0;
    out[k++] = (char *)native_path;
    for (int i = 1; i < argc; i++) {
        out[k] = argv[i];
        for (int j = 0; j < count; j++) {
            if (strncmp(lines[j], "replace=", 8) != 0)
                continue;
            const char *old = lines[j] + 8;
            const char *eq = strchr(old, '=');
            if (eq != NULL && (size_t)(eq - old) == strlen(argv[i]) &&
                strncmp(old, argv[i], (size_t)(eq - old)) == 0) {
                out[k] = (char *)(eq + 1);
                break;
            }
        }
        k++;
    }
    for (int i = 0; i < count; i++) {
        char *line = lines[i];
        if (strcmp(line, "nostdinc") == 0) {
            if (!nostdinc)
                out[k++] = "-nostdinc";
        } else if (strncmp(line, "arg=", 4) == 0) {
            out[k++] = line + 4;
        } else if (strncmp(line, "sys=", 4) == 0) {
            if (!nostdinc) {
                out[k++] = "-isystem";
                out[k++] = line + 4;
            }
        } else if (strncmp(line, "cxx=", 4) == 0) {
            if (!nostdincxx) {
                out[k++] = "-isystem";
                out[k++] = line + 4;
            }
        }
    }
    out[k] = NULL;
    if (ident_native != NULL && ident_image != NULL)
        return run_rewriting(native_path, out, ident_native, ident_image);
    execv(native_path, out);
    die(1,
        "cannot run the native leaf %s: %s (the image's accelerated toolchain is "
        "damaged; XARCH_NATIVE_TOOLS=0 selects the emulated leaves)",
        native_path, strerror(errno));
    return 1;
}
