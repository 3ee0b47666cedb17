/* xarch bench timer: run a command, print its wall and CPU time.
 *
 * Built on the host as a static x86_64 binary (benchmarks/runner.py) and used on both
 * sides: natively, and bind-mounted into the emulated container, where it still runs
 * natively (an x86_64 binary is no foreign executable for the host's kernel). So the
 * timing of an emulated workload starts and ends inside the container, with neither
 * `docker exec` nor an emulated timer in the measurement.
 *
 *   xarch-bench-timer TIMEOUT_SECONDS CMD [ARG...]
 *
 * The command inherits stdin, stdout and stderr. Afterwards one line goes to stderr:
 *
 *   XARCH-BENCH wall_ns=N cpu_us=N exit=N timeout=0|1
 *
 * cpu_us is user + system time of the command and its children (wait4's rusage). The
 * command runs in its own process group, which is killed when the timeout expires.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t timed_out = 0;
static pid_t child = 0;

static void on_alarm(int sig) {
    (void)sig;
    timed_out = 1;
    if (child > 0)
        kill(-child, SIGKILL);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s TIMEOUT_SECONDS CMD [ARG...]\n", argv[0]);
        return 125;
    }
    unsigned timeout = (unsigned)strtoul(argv[1], NULL, 10);
    struct timespec start, end;
    struct rusage usage;
    int status = 0;

    clock_gettime(CLOCK_MONOTONIC, &start);
    child = fork();
    if (child < 0) {
        perror("fork");
        return 125;
    }
    if (child == 0) {
        setpgid(0, 0);
        execvp(argv[2], argv + 2);
        fprintf(stderr, "xarch-bench-timer: cannot run %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    setpgid(child, child);
    signal(SIGALRM, on_alarm);
    if (timeout > 0)
        alarm(timeout);
    while (wait4(child, &status, 0, &usage) < 0) {
        if (errno != EINTR) {
            perror("wait4");
            return 125;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    long long wall_ns =
        (long long)(end.tv_sec - start.tv_sec) * 1000000000LL + (end.tv_nsec - start.tv_nsec);
    long long cpu_us = (long long)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000LL +
                       usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    fflush(stdout);
    fprintf(stderr, "\nXARCH-BENCH wall_ns=%lld cpu_us=%lld exit=%d timeout=%d\n", wall_ns,
            cpu_us, code, (int)timed_out);
    return code;
}
