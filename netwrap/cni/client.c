/*
 * netwrap-cni's compiled client: what `netwrap-cni --install` builds when a C
 * compiler is there. It does what netwrap/cni/client.py does first, without
 * an interpreter's start: connect to the warm helper of this installation,
 * check that it runs as the same user, hand it standard input, output and
 * error (SCM_RIGHTS) with the working directory, umask and environment, and
 * leave with the exit code it sends back. Everything else (no helper, a
 * helper that does not take the call, the helper turned off, a person's
 * arguments) goes to the Python client, exec'd in this process with nothing
 * read from standard input: it runs the call itself and starts a helper.
 *
 * The install writes three definitions in front of this file:
 *   NETWRAP_SOCKET  the abstract socket's name, with %u for the user's id
 *   NETWRAP_PYTHON  the interpreter netwrap is installed with
 *   NETWRAP_PYTHON_JSON  the same, escaped for a JSON string
 *   NETWRAP_CODE    the Python client's start (`-c` code)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define PROTOCOL "netwrap-cni/1"
#define ANSWERED '='

extern char **environ;

static const char lost[] =
    "{\"cniVersion\": \"1.0.0\", \"code\": 999, \"msg\": \"the netwrap-cni helper stopped before answering\"}\n";

/* The Python client, in this process: argv[0] becomes "-c" as under the launcher, the rest is kept. */
static void python_client(int argc, char **argv) {
    char **args = calloc((size_t)argc + 5, sizeof(char *));
    if (args != NULL) {
        args[0] = NETWRAP_PYTHON;
        args[1] = "-I";
        args[2] = "-S";
        args[3] = "-c";
        args[4] = NETWRAP_CODE;
        for (int i = 1; i < argc; i++)
            args[i + 4] = argv[i];
        execv(NETWRAP_PYTHON, args);
    }
    static const char failed[] =
        "{\"cniVersion\": \"1.0.0\", \"code\": 999, \"msg\": \"netwrap-cni cannot start " NETWRAP_PYTHON_JSON
        ": run netwrap-cni --install again\"}\n";
    (void)!write(1, failed, sizeof(failed) - 1);
    _exit(1);
}

static int helper_off(void) {
    const char *value = getenv("NETWRAP_CNI_HELPER");
    if (value == NULL)
        return 0;
    return !strcasecmp(value, "off") || !strcmp(value, "0") || !strcasecmp(value, "no") || !strcasecmp(value, "false");
}

/* Grows a buffer by `size` bytes of `data`; 0 when memory runs out. */
static int append(char **buffer, size_t *used, size_t *room, const char *data, size_t size) {
    if (*used + size > *room) {
        size_t wanted = (*used + size) * 2;
        char *bigger = realloc(*buffer, wanted);
        if (bigger == NULL)
            return 0;
        *buffer = bigger;
        *room = wanted;
    }
    memcpy(*buffer + *used, data, size);
    *used += size;
    return 1;
}

/* The request: 4 bytes of length (big-endian), then protocol, directory, umask and KEY=VALUE entries,
 * separated by NUL bytes, as client.request() writes it. NULL when it cannot be made. */
static char *request(size_t *size) {
    char cwd[4096];
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        return NULL;
    mode_t mask = umask(022);
    umask(mask);
    char masktext[16];
    snprintf(masktext, sizeof(masktext), "%u", (unsigned)mask);
    size_t used = 4, room = 8192;
    char *buffer = malloc(room);
    if (buffer == NULL)
        return NULL;
    const char *fields[] = {PROTOCOL, cwd, masktext};
    int ok = 1;
    for (size_t i = 0; i < 3 && ok; i++)
        ok = (i == 0 || append(&buffer, &used, &room, "", 1)) && append(&buffer, &used, &room, fields[i], strlen(fields[i]));
    for (char **entry = environ; ok && *entry != NULL; entry++) {
        if (strchr(*entry, '=') == NULL)
            continue; /* not a variable: Python's os.environ skips it too */
        ok = append(&buffer, &used, &room, "", 1) && append(&buffer, &used, &room, *entry, strlen(*entry));
    }
    if (!ok || used - 4 > 0xffffffffu) {
        free(buffer);
        return NULL;
    }
    size_t body = used - 4;
    buffer[0] = (char)(body >> 24);
    buffer[1] = (char)(body >> 16);
    buffer[2] = (char)(body >> 8);
    buffer[3] = (char)body;
    *size = used;
    return buffer;
}

static int send_all(int sock, const char *data, size_t size, int with_fds) {
    int fds[3] = {0, 1, 2};
    char control[CMSG_SPACE(sizeof(fds))];
    while (size > 0) {
        struct iovec part = {(void *)data, size};
        struct msghdr message = {.msg_iov = &part, .msg_iovlen = 1};
        if (with_fds) {
            memset(control, 0, sizeof(control));
            message.msg_control = control;
            message.msg_controllen = sizeof(control);
            struct cmsghdr *header = CMSG_FIRSTHDR(&message);
            header->cmsg_level = SOL_SOCKET;
            header->cmsg_type = SCM_RIGHTS;
            header->cmsg_len = CMSG_LEN(sizeof(fds));
            memcpy(CMSG_DATA(header), fds, sizeof(fds));
        }
        ssize_t sent = sendmsg(sock, &message, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            return 0;
        }
        with_fds = 0; /* the descriptors ride on the first part only */
        data += sent;
        size -= (size_t)sent;
    }
    return 1;
}

static int receive_byte(int sock) {
    unsigned char byte;
    for (;;) {
        ssize_t got = recv(sock, &byte, 1, 0);
        if (got == 1)
            return byte;
        if (got < 0 && errno == EINTR)
            continue;
        return -1;
    }
}

int main(int argc, char **argv) {
    if (argc > 1 || helper_off())
        python_client(argc, argv);
    int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0)
        python_client(argc, argv);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    int length = snprintf(address.sun_path + 1, sizeof(address.sun_path) - 1, NETWRAP_SOCKET, (unsigned)getuid());
    if (length <= 0 || (size_t)length >= sizeof(address.sun_path) - 1)
        python_client(argc, argv);
    socklen_t size = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)length);
    if (connect(sock, (struct sockaddr *)&address, size) < 0)
        python_client(argc, argv); /* no helper: the Python client runs the call and starts one */
    struct ucred peer;
    socklen_t peer_size = sizeof(peer);
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &peer, &peer_size) < 0 || peer.uid != getuid())
        python_client(argc, argv); /* someone else holds the name: never hand them our input */
    size_t request_size = 0;
    char *message = request(&request_size);
    if (message == NULL || !send_all(sock, message, request_size, 1) || receive_byte(sock) != ANSWERED) {
        close(sock);
        python_client(argc, argv); /* not taken: nothing was read from our input */
    }
    int code = receive_byte(sock);
    if (code < 0) {
        (void)!write(1, lost, sizeof(lost) - 1);
        _exit(1);
    }
    _exit(code);
}
