/*
 * coderoom-launch: the host-side first step of every sandboxed run.
 *
 * The engine starts this (never a shell) with the run's settings on the command line; it
 *   1. joins the run's cgroups (while still allowed to), so nothing of the run can ever
 *      exist outside them;
 *   2. sets the rlimits that must hold for everything below it;
 *   3. drops to the run's unprivileged host uid/gid (when started as root): no
 *      supplementary groups, real = effective = saved ids;
 *   4. refuses to go on as host uid 0 or gid 0, whatever it was asked;
 *   5. sets no_new_privs, resets every signal to its default and unblocks them all;
 *   6. closes every file descriptor except 0, 1, 2 and the ones it was told to keep,
 *      whatever the caller leaked to it;
 *   7. execs the next program (bubblewrap).
 * Any failure prints one line to stderr and exits 125 (the engine reports that as a
 * sandbox failure, never as the program's own exit status).
 *
 * Why C and not a shell or Python: it runs once per execution on the hot path (a shell
 * costs an extra exec and cannot close a range of descriptors; Python costs ~15 ms to
 * start), and no packaged tool does all of the above in one step (setpriv drops ids but
 * neither joins cgroups nor closes descriptors).
 *
 * Usage:
 *   coderoom-launch [--cgroup PROCS_FILE]... [--rlimit NAME=SOFT[:HARD]]...
 *                   [--uid UID --gid GID] [--keep-fd FD]... -- PROGRAM [ARG]...
 *   NAME is one of: as, core, cpu, fsize, nice, nofile, nproc, rtprio.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EXIT_LAUNCH_FAILED 125
#define MAX_KEEP 128 /* a program may have 64 files, plus the sandbox's own pipes */
#define MAX_CGROUPS 8

extern char **environ;

static void fail(const char *what, const char *detail) {
    if (detail != NULL) {
        fprintf(stderr, "coderoom-launch: %s: %s\n", what, detail);
    } else {
        fprintf(stderr, "coderoom-launch: %s\n", what);
    }
    _exit(EXIT_LAUNCH_FAILED);
}

static void fail_errno(const char *what) { fail(what, strerror(errno)); }

static unsigned long long parse_number(const char *text, const char *what) {
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-') {
        fail("not a number", what);
    }
    return value;
}

static int resource_of(const char *name) {
    static const struct {
        const char *name;
        int resource;
    } table[] = {
        {"as", RLIMIT_AS},       {"core", RLIMIT_CORE},     {"cpu", RLIMIT_CPU},
        {"fsize", RLIMIT_FSIZE}, {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC},
        {"nice", RLIMIT_NICE},   {"rtprio", RLIMIT_RTPRIO},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(name, table[i].name) == 0) {
            return table[i].resource;
        }
    }
    fail("unknown rlimit", name);
    return -1;
}

static void set_rlimit(char *spec) {
    char *equals = strchr(spec, '=');
    if (equals == NULL) {
        fail("rlimit must be NAME=SOFT[:HARD]", spec);
    }
    *equals = '\0';
    int resource = resource_of(spec);
    char *soft_text = equals + 1;
    char *colon = strchr(soft_text, ':');
    struct rlimit limit;
    if (colon != NULL) {
        *colon = '\0';
        limit.rlim_cur = parse_number(soft_text, spec);
        limit.rlim_max = parse_number(colon + 1, spec);
    } else {
        limit.rlim_cur = limit.rlim_max = parse_number(soft_text, spec);
    }
    if (setrlimit(resource, &limit) != 0) {
        fail_errno(spec);
    }
}

static void join_cgroup(const char *procs_file) {
    char pid[32];
    int length = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    int fd = open(procs_file, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        fail_errno("cannot open the run's cgroup");
    }
    if (write(fd, pid, (size_t)length) != length) {
        fail_errno("cannot join the run's cgroup");
    }
    close(fd);
}

static void drop_privileges(long long uid, long long gid) {
    if (gid >= 0) {
        if (setgroups(0, NULL) != 0) {
            fail_errno("setgroups");
        }
        if (setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) != 0) {
            fail_errno("setresgid");
        }
    }
    if (uid >= 0 && setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) != 0) {
        fail_errno("setresuid");
    }
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;
    if (getresuid(&ruid, &euid, &suid) != 0 || getresgid(&rgid, &egid, &sgid) != 0) {
        fail_errno("getresuid");
    }
    if (ruid == 0 || euid == 0 || suid == 0 || rgid == 0 || egid == 0 || sgid == 0) {
        fail("refusing to run a sandbox as host uid 0 or gid 0",
             "start the service as root with a sandbox uid range, or as an unprivileged user");
    }
    if (getgroups(0, NULL) > 0) {
        gid_t groups[NGROUPS_MAX];
        int count = getgroups(NGROUPS_MAX, groups);
        for (int i = 0; i < count; i++) {
            if (groups[i] == 0) {
                fail("refusing to run a sandbox with supplementary group 0", NULL);
            }
        }
    }
}

static void reset_signals(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    for (int signum = 1; signum < NSIG; signum++) {
        if (signum != SIGKILL && signum != SIGSTOP) {
            sigaction(signum, &action, NULL); /* fails harmlessly for reserved numbers */
        }
    }
    /* The raw call: the C library's wrapper keeps its own internal signals as they are. */
    unsigned long long none = 0;
    if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof none) != 0) {
        fail_errno("sigprocmask");
    }
}

static int compare_ints(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int close_from_to(unsigned int first, unsigned int last) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, first, last, 0) == 0) {
        return 0;
    }
    if (errno != ENOSYS) {
        return -1;
    }
#endif
    /* Kernels before 5.9: close one by one up to the descriptor limit. */
    struct rlimit limit;
    unsigned int top = last;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_max != RLIM_INFINITY &&
        limit.rlim_max < (rlim_t)top) {
        top = (unsigned int)limit.rlim_max;
    }
    for (unsigned int fd = first; fd <= top && fd >= first; fd++) {
        close((int)fd);
    }
    return 0;
}

/* Close everything but 0-2 and `keep` (sorted); make the kept ones survive exec. */
static void close_other_fds(int *keep, int count) {
    qsort(keep, (size_t)count, sizeof keep[0], compare_ints);
    unsigned int next = 3;
    for (int i = 0; i < count; i++) {
        int fd = keep[i];
        if (fd < 3 || (i > 0 && keep[i - 1] == fd)) {
            continue;
        }
        int flags = fcntl(fd, F_GETFD);
        if (flags < 0 || fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) != 0) {
            fail_errno("a descriptor to keep is not open");
        }
        if ((unsigned int)fd > next && close_from_to(next, (unsigned int)fd - 1) != 0) {
            fail_errno("close_range");
        }
        next = (unsigned int)fd + 1;
    }
    if (close_from_to(next, UINT_MAX) != 0) {
        fail_errno("close_range");
    }
}

int main(int argc, char **argv) {
    const char *cgroups[MAX_CGROUPS];
    int cgroup_count = 0;
    char *rlimits[16];
    int rlimit_count = 0;
    int keep[MAX_KEEP];
    int keep_count = 0;
    long long uid = -1, gid = -1;
    int i = 1;
    for (; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "--") == 0) {
            i++;
            break;
        }
        if (i + 1 >= argc) {
            fail("missing value for", flag);
        }
        char *value = argv[++i];
        if (strcmp(flag, "--cgroup") == 0 && cgroup_count < MAX_CGROUPS) {
            cgroups[cgroup_count++] = value;
        } else if (strcmp(flag, "--rlimit") == 0 && rlimit_count < 16) {
            rlimits[rlimit_count++] = value;
        } else if (strcmp(flag, "--keep-fd") == 0 && keep_count < MAX_KEEP) {
            keep[keep_count++] = (int)parse_number(value, flag);
        } else if (strcmp(flag, "--uid") == 0) {
            uid = (long long)parse_number(value, flag);
        } else if (strcmp(flag, "--gid") == 0) {
            gid = (long long)parse_number(value, flag);
        } else {
            fail("unknown or repeated option", flag);
        }
    }
    if (i >= argc) {
        fail("nothing to run: expected -- PROGRAM [ARG]...", NULL);
    }
    if ((uid < 0) != (gid < 0)) {
        fail("--uid and --gid go together", NULL);
    }
    for (int c = 0; c < cgroup_count; c++) {
        join_cgroup(cgroups[c]);
    }
    for (int r = 0; r < rlimit_count; r++) {
        set_rlimit(rlimits[r]);
    }
    drop_privileges(uid, gid);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        fail_errno("no_new_privs");
    }
    reset_signals();
    close_other_fds(keep, keep_count);
    execve(argv[i], &argv[i], environ);
    fail_errno("cannot start the sandbox");
    return EXIT_LAUNCH_FAILED;
}
