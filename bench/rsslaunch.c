/* rsslaunch FD CMD...: runs CMD and prints its peak RSS (KiB) on descriptor FD, so the figure is the
 * command's own and not that of a large parent it was forked from. Built by bench/runtime.py. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    int out = atoi(argv[1]);
    pid_t p = fork();
    if (p == 0) {
        close(out);
        execvp(argv[2], argv + 2);
        _exit(127);
    }
    int st;
    struct rusage ru;
    if (wait4(p, &st, 0, &ru) < 0) return 2;
    dprintf(out, "%ld\n", ru.ru_maxrss);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
