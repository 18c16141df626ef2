// Sandbox escapes: each argument is `r:PATH` (open for reading), `w:PATH` (create
// and write) or `d:PATH` (mkdir). Prints `PATH: opened` or `PATH: ERRNO_NAME (text)`.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *errno_name(int e) {
    switch (e) {
    case ENOTCAPABLE: return "ENOTCAPABLE";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOENT: return "ENOENT";
    case ELOOP: return "ELOOP";
    case EBADF: return "EBADF";
    default: return "other";
    }
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *p = arg + 2;
        int ok;
        if (strncmp(arg, "r:", 2) == 0) {
            int fd = open(p, O_RDONLY);
            ok = fd >= 0;
            if (ok) close(fd);
        } else if (strncmp(arg, "w:", 2) == 0) {
            int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            ok = fd >= 0;
            if (ok) {
                write(fd, "escaped\n", 8);
                close(fd);
            }
        } else if (strncmp(arg, "d:", 2) == 0) {
            ok = mkdir(p, 0755) == 0;
        } else {
            fprintf(stderr, "bad argument %s\n", arg);
            return 2;
        }
        if (ok)
            printf("%s: opened\n", arg);
        else
            printf("%s: %s (%s)\n", arg, errno_name(errno), strerror(errno));
    }
    return 0;
}
