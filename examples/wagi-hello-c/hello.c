/*
 * A WAGI program in C: an ordinary command-line program that Wasmgate runs once per
 * HTTP request, the way a web server runs a CGI script. Built for wasm32-wasi with clang
 * and wasi-libc (see build.sh), it is a WASI command module that exports `_start`.
 *
 * The CGI contract, as WAGI uses it:
 *
 *  - Input. The request body is on stdin. Everything else about the request is in
 *    environment variables: REQUEST_METHOD, PATH_INFO, QUERY_STRING, CONTENT_TYPE,
 *    CONTENT_LENGTH, ... and one HTTP_* variable per request header (User-Agent becomes
 *    HTTP_USER_AGENT). argv is the script path followed by the query string's
 *    '&'-separated items.
 *  - Output. Whatever the program prints on stdout IS the HTTP response: first the
 *    response headers, one "Name: value" per line, then an empty line, then the body. The
 *    empty line is required: it is the only way the server can tell where the headers end
 *    and the body begins (the body may itself contain lines that look like headers).
 *  - Status. There is no status line. The pseudo-header "Status: 404 Not Found" sets the
 *    status; without it the status is 200, or 302 if the only header is "Location".
 *  - Logging. stderr goes to the server's log, never to the client.
 *
 * This program answers:
 *  - GET /anything?name=Ada with an HTML greeting for "Ada" (percent-decoded), plus the
 *    request method and path;
 *  - POST with the length (and type) of the body it received;
 *  - any other method with 405 Method Not Allowed.
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* getenv that never returns NULL. */
static const char *env_or(const char *name, const char *fallback) {
    const char *value = getenv(name);
    return value ? value : fallback;
}

static int hex_value(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return c - 'A' + 10; /* only called after isxdigit() */
}

/*
 * Decodes one application/x-www-form-urlencoded piece of `len` bytes into `out`
 * (which must have room for len + 1 bytes): '+' becomes a space, %XX the byte XX.
 * Invalid escapes are copied as they are.
 */
static void url_decode(const char *in, size_t len, char *out) {
    size_t i = 0;
    while (i < len) {
        if (in[i] == '+') {
            *out++ = ' ';
            i += 1;
        } else if (in[i] == '%' && i + 2 < len && isxdigit((unsigned char)in[i + 1]) &&
                   isxdigit((unsigned char)in[i + 2])) {
            *out++ = (char)(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2]));
            i += 3;
        } else {
            *out++ = in[i++];
        }
    }
    *out = '\0';
}

/*
 * Finds `key` in a form-encoded string such as "name=Ada+Lovelace&x=1" and returns its
 * decoded value in a malloc'ed string, or NULL when the key is not there.
 */
static char *form_value(const char *encoded, const char *key) {
    const char *item = encoded;
    while (*item) {
        size_t item_len = strcspn(item, "&");
        const char *eq = memchr(item, '=', item_len);
        size_t key_len = eq ? (size_t)(eq - item) : item_len;

        char *decoded_key = malloc(key_len + 1);
        if (!decoded_key) return NULL;
        url_decode(item, key_len, decoded_key);
        int match = strcmp(decoded_key, key) == 0;
        free(decoded_key);

        if (match) {
            size_t value_len = eq ? item_len - key_len - 1 : 0;
            char *value = malloc(value_len + 1);
            if (!value) return NULL;
            url_decode(eq ? eq + 1 : item + item_len, value_len, value);
            return value;
        }
        item += item_len;
        if (*item == '&') item++;
    }
    return NULL;
}

/* Prints text to stdout with the characters that are special in HTML escaped. */
static void print_html(const char *text) {
    for (; *text; text++) {
        switch (*text) {
        case '&': fputs("&amp;", stdout); break;
        case '<': fputs("&lt;", stdout); break;
        case '>': fputs("&gt;", stdout); break;
        case '"': fputs("&quot;", stdout); break;
        case '\'': fputs("&#39;", stdout); break;
        default: putchar(*text);
        }
    }
}

/* GET: greets the `name` from the query string and shows what the server told us. */
static void greet(const char *method) {
    /* The query string arrives raw, e.g. "name=Ada%20Lovelace&lang=en". */
    char *name = form_value(env_or("QUERY_STRING", ""), "name");

    /* Headers, then the empty line that ends them. No Status header: 200 OK. */
    printf("Content-Type: text/html; charset=utf-8\n");
    printf("\n");

    /* Everything after the empty line is the body. Anything that came from the request
     * is HTML-escaped before it goes into the page. */
    printf("<!DOCTYPE html>\n<html>\n");
    printf("<head><meta charset=\"utf-8\"><title>Hello from WAGI</title></head>\n");
    printf("<body>\n<h1>Hello, ");
    print_html(name ? name : "world");
    printf("!</h1>\n");
    printf("<p>This page was written to stdout by a WebAssembly program (in C).</p>\n");
    printf("<ul>\n<li>method: <code>");
    print_html(method);
    /* SCRIPT_NAME is the part of the URL path that selected this program (the route),
     * PATH_INFO is the rest. With the route "/..." they are "" and the whole path. */
    printf("</code></li>\n<li>path: <code>");
    print_html(env_or("SCRIPT_NAME", ""));
    print_html(env_or("PATH_INFO", ""));
    printf("</code></li>\n<li>user agent: <code>");
    print_html(env_or("HTTP_USER_AGENT", "(none)"));
    printf("</code></li>\n</ul>\n");
    printf("<p>Try <code>?name=Your+Name</code> at the end of the URL.</p>\n");
    printf("</body>\n</html>\n");
    free(name);
}

/* POST: reads the whole request body from stdin and reports how big it was. */
static void count_body(void) {
    const char *content_type = env_or("CONTENT_TYPE", "(none)");
    int is_form = strncmp(content_type, "application/x-www-form-urlencoded", 33) == 0;

    /* Keep the body only for forms (to find `name`); otherwise just count it. */
    char *form = NULL;
    size_t total = 0, capacity = 0;
    char buffer[16384];
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, stdin)) > 0) {
        if (is_form) {
            if (total + n + 1 > capacity) {
                capacity = (total + n + 1) * 2;
                char *bigger = realloc(form, capacity);
                if (!bigger) {
                    free(form);
                    printf("Status: 413 Content Too Large\n");
                    printf("Content-Type: text/plain; charset=utf-8\n\n");
                    printf("The form is too large.\n");
                    return;
                }
                form = bigger;
            }
            memcpy(form + total, buffer, n);
        }
        total += n;
    }
    if (ferror(stdin)) {
        printf("Status: 500 Internal Server Error\n");
        printf("Content-Type: text/plain; charset=utf-8\n\n");
        printf("Could not read the request body.\n");
        free(form);
        return;
    }

    printf("Content-Type: text/plain; charset=utf-8\n\n");
    printf("Received %zu bytes of %s.\n", total, content_type);
    /* A submitted HTML form has the same a=1&b=2 format as a query string. */
    if (form) {
        form[total] = '\0';
        char *name = form_value(form, "name");
        if (name) printf("Hello, %s!\n", name);
        free(name);
        free(form);
    }
}

int main(void) {
    const char *method = env_or("REQUEST_METHOD", "");

    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
        greet(method);
    } else if (strcmp(method, "POST") == 0) {
        count_body();
    } else {
        /* A Status header is how a CGI program picks the HTTP status code. */
        printf("Status: 405 Method Not Allowed\n");
        printf("Allow: GET, HEAD, POST\n");
        printf("Content-Type: text/plain; charset=utf-8\n");
        printf("\n");
        printf("%s is not supported here\n", method);
    }

    /* stdout is buffered: make sure everything reached the server. */
    if (fflush(stdout) != 0) {
        /* stderr ends up in the server's log. The client may simply have gone away. */
        fprintf(stderr, "wagi-hello-c: could not write the response\n");
        return 1;
    }
    return 0;
}
