// Files in a pre-opened directory, given as argv[1]: creates, writes, reads back,
// seeks, stats, lists, renames and deletes files and directories, reads a file the
// host wrote (`host.txt`) and leaves one for the host to read (`guest.txt`).
// Prints one line per step; any failure prints `FAIL` and exits with status 1.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *dir;

static const char *path(const char *name) {
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

static void check(int ok, const char *step) {
    if (!ok) {
        printf("FAIL %s: %s\n", step, strerror(errno));
        exit(1);
    }
}

static int compare(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// Prints the sorted entries of `name`, without `.` and `..`.
static void list(const char *name) {
    DIR *d = opendir(path(name));
    check(d != NULL, "opendir");
    char *names[64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 && n < 64)
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof names[0], compare);
    printf("ls %s:", name);
    for (int i = 0; i < n; i++) {
        printf(" %s", names[i]);
        free(names[i]);
    }
    printf("\n");
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: files DIR\n");
        return 2;
    }
    dir = argv[1];

    check(mkdir(path("sub"), 0755) == 0, "mkdir sub");
    FILE *f = fopen(path("sub/a.txt"), "w");
    check(f != NULL, "create sub/a.txt");
    check(fputs("hello, file world\n", f) >= 0, "write");
    check(fclose(f) == 0, "close after write");

    char buf[64] = {0};
    f = fopen(path("sub/a.txt"), "r");
    check(f != NULL, "open sub/a.txt");
    check(fgets(buf, sizeof buf, f) != NULL, "read");
    printf("read back: %s", buf);
    check(fseek(f, 7, SEEK_SET) == 0, "seek");
    memset(buf, 0, sizeof buf);
    check(fread(buf, 1, 4, f) == 4, "read after seek");
    printf("at offset 7: %s\n", buf);
    check(fseek(f, -6, SEEK_END) == 0, "seek from end");
    printf("tell: %ld\n", ftell(f));
    check(fclose(f) == 0, "close after read");

    int fd = open(path("sub/a.txt"), O_WRONLY | O_APPEND);
    check(fd >= 0, "open for append");
    check(write(fd, "more\n", 5) == 5, "append");
    check(close(fd) == 0, "close after append");

    struct stat st;
    check(stat(path("sub/a.txt"), &st) == 0, "stat");
    printf("size: %lld, regular: %d\n", (long long)st.st_size, S_ISREG(st.st_mode));
    check(stat(path("sub"), &st) == 0, "stat sub");
    printf("sub is a directory: %d\n", S_ISDIR(st.st_mode));

    check(mkdir(path("sub/empty"), 0755) == 0, "mkdir sub/empty");
    list("sub");
    check(rename(path("sub/a.txt"), path("sub/b.txt")) == 0, "rename");
    list("sub");
    check(stat(path("sub/a.txt"), &st) != 0 && errno == ENOENT, "old name is gone");

    check(unlink(path("sub/b.txt")) == 0, "unlink");
    check(rmdir(path("sub/empty")) == 0, "rmdir sub/empty");
    list("sub");
    check(rmdir(path("sub")) == 0, "rmdir sub");
    check(stat(path("sub"), &st) != 0 && errno == ENOENT, "sub is gone");
    printf("removed sub\n");

    // Enough entries to take several fd_readdir calls.
    check(mkdir(path("many"), 0755) == 0, "mkdir many");
    char name[64];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "many/file-with-a-longish-name-%03d", i);
        int fd = open(path(name), O_WRONLY | O_CREAT | O_EXCL, 0644);
        check(fd >= 0, "create many/*");
        close(fd);
    }
    DIR *d = opendir(path("many"));
    check(d != NULL, "opendir many");
    int entries = 0, last_seen = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int n;
        if (sscanf(e->d_name, "file-with-a-longish-name-%d", &n) == 1) {
            entries++;
            last_seen |= n == 299;
        }
    }
    closedir(d);
    printf("many: %d entries, last seen: %d\n", entries, last_seen);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "many/file-with-a-longish-name-%03d", i);
        check(unlink(path(name)) == 0, "unlink many/*");
    }
    check(rmdir(path("many")) == 0, "rmdir many");

    f = fopen(path("host.txt"), "r");
    check(f != NULL, "open host.txt");
    memset(buf, 0, sizeof buf);
    check(fgets(buf, sizeof buf, f) != NULL, "read host.txt");
    fclose(f);
    printf("host.txt: %s", buf);

    f = fopen(path("guest.txt"), "w");
    check(f != NULL, "create guest.txt");
    fprintf(f, "written by the guest\n");
    check(fclose(f) == 0, "close guest.txt");
    list(".");
    printf("done\n");
    return 0;
}
