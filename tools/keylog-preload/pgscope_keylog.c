/*
 * pgscope_keylog.so: writes the TLS secrets of every connection of a process linked
 * with OpenSSL 1.1.1+ to an NSS key log, for clients that cannot write one (see
 * docs/tls.md). Load it into the PostgreSQL server:
 *
 *   PGSCOPE_KEYLOG=/tmp/pg-keys.log LD_PRELOAD=/path/to/pgscope_keylog.so pg_ctl start ...
 *
 * It wraps SSL_CTX_new (and SSL_CTX_new_ex) to install a keylog callback (SSL_CTX_set_keylog_callback)
 * that appends each line to $PGSCOPE_KEYLOG (created 0600). A key log decrypts
 * everything it covers: use it on test systems only, and restart the server without
 * it when done.
 *
 * No OpenSSL headers needed: the two functions are looked up in the process.
 * Build: cc -shared -fPIC -O2 -o pgscope_keylog.so pgscope_keylog.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct ssl_method_st SSL_METHOD;
typedef void (*keylog_cb)(const SSL *, const char *);

static void write_line(const SSL *ssl, const char *line)
{
    (void)ssl;
    const char *path = getenv("PGSCOPE_KEYLOG");
    if (path == NULL || *path == '\0')
        return;
    /* Opened per line with O_APPEND: each line lands whole even with the server's
     * many processes writing to one file, and a line is on disk as soon as written,
     * for pgscope following the file live. */
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    size_t n = strlen(line);
    char buf[512];
    if (n + 1 <= sizeof buf) {
        memcpy(buf, line, n);
        buf[n] = '\n';
        (void)!write(fd, buf, n + 1);
    }
    close(fd);
}

typedef struct ossl_lib_ctx_st OSSL_LIB_CTX;

static void install(SSL_CTX *ctx)
{
    static void (*set_cb)(SSL_CTX *, keylog_cb);
    if (set_cb == NULL)
        set_cb = (void (*)(SSL_CTX *, keylog_cb))dlsym(RTLD_DEFAULT, "SSL_CTX_set_keylog_callback");
    if (ctx != NULL && set_cb != NULL)
        set_cb(ctx, write_line);
}

/* PostgreSQL calls SSL_CTX_new; OpenSSL 3's own tools SSL_CTX_new_ex. */
SSL_CTX *SSL_CTX_new(const SSL_METHOD *method)
{
    static SSL_CTX *(*real)(const SSL_METHOD *);
    if (real == NULL)
        real = (SSL_CTX * (*)(const SSL_METHOD *)) dlsym(RTLD_NEXT, "SSL_CTX_new");
    SSL_CTX *ctx = real != NULL ? real(method) : NULL;
    install(ctx);
    return ctx;
}

SSL_CTX *SSL_CTX_new_ex(OSSL_LIB_CTX *libctx, const char *propq, const SSL_METHOD *method)
{
    static SSL_CTX *(*real)(OSSL_LIB_CTX *, const char *, const SSL_METHOD *);
    if (real == NULL)
        real = (SSL_CTX * (*)(OSSL_LIB_CTX *, const char *, const SSL_METHOD *))
            dlsym(RTLD_NEXT, "SSL_CTX_new_ex");
    SSL_CTX *ctx = real != NULL ? real(libctx, propq, method) : NULL;
    install(ctx);
    return ctx;
}
