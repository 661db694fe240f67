/*
 * qemu-dseg test guests: COM1 console and a small printf.
 *
 * Supports %d %i %u %x %X %p %s %c %% with the flags '0' and '-', a field
 * width and the length modifiers l, ll and z.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"

#define COM1        0x3f8
#define COM_LSR     5
#define LSR_THRE    0x20

void serial_write_raw(char c)
{
    while (!(inb(COM1 + COM_LSR) & LSR_THRE)) {
        /* wait for the transmitter */
    }
    outb(COM1, c);
}

void putchar_serial(char c)
{
    if (c == '\n') {
        serial_write_raw('\r');
    }
    serial_write_raw(c);
}

struct out {
    char *buf;
    size_t size, len;
};

static void emit(struct out *o, char c)
{
    if (o->len + 1 < o->size) {
        o->buf[o->len] = c;
    }
    o->len++;
}

static void emit_field(struct out *o, const char *s, size_t n, int width,
                       bool left, char pad)
{
    size_t fill = width > 0 && (size_t)width > n ? width - n : 0;

    if (!left) {
        /* Zero padding goes after a sign. */
        if (pad == '0' && n && *s == '-') {
            emit(o, *s++);
            n--;
        }
        while (fill--) {
            emit(o, pad);
        }
        fill = 0;
    }
    while (n--) {
        emit(o, *s++);
    }
    while (fill--) {
        emit(o, ' ');
    }
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct out o = { buf, size, 0 };

    for (; *fmt; fmt++) {
        char num[24], *p = num + sizeof(num);
        bool left = false, alt = false, is_signed = false;
        char pad = ' ';
        int width = 0, lng = 0;
        unsigned base = 10;
        uint64_t v;

        if (*fmt != '%') {
            emit(&o, *fmt);
            continue;
        }
        for (fmt++; *fmt == '0' || *fmt == '-' || *fmt == '#'; fmt++) {
            if (*fmt == '0') {
                pad = '0';
            } else if (*fmt == '-') {
                left = true;
            } else {
                alt = true;
            }
        }
        for (; *fmt >= '0' && *fmt <= '9'; fmt++) {
            width = width * 10 + *fmt - '0';
        }
        for (; *fmt == 'l' || *fmt == 'z'; fmt++) {
            lng++;
        }
        switch (*fmt) {
        case 's': {
            const char *s = va_arg(ap, const char *);

            s = s ? s : "(null)";
            emit_field(&o, s, strlen(s), width, left, ' ');
            continue;
        }
        case 'c':
            num[0] = (char)va_arg(ap, int);
            emit_field(&o, num, 1, width, left, ' ');
            continue;
        case 'd':
        case 'i':
            is_signed = true;
            break;
        case 'u':
            break;
        case 'p':
            lng = 2;
            alt = true;
            /* fall through */
        case 'x':
        case 'X':
            base = 16;
            break;
        case '%':
            emit(&o, '%');
            continue;
        default:
            emit(&o, '%');
            emit(&o, *fmt ? *fmt : '?');
            if (!*fmt) {
                fmt--;
            }
            continue;
        }
        if (is_signed) {
            int64_t s = lng ? va_arg(ap, int64_t) : va_arg(ap, int);

            v = s < 0 ? -(uint64_t)s : (uint64_t)s;
            do {
                *--p = '0' + v % 10;
                v /= 10;
            } while (v);
            if (s < 0) {
                *--p = '-';
            }
        } else {
            const char *digits = *fmt == 'X' ? "0123456789ABCDEF"
                                             : "0123456789abcdef";

            v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int);
            do {
                *--p = digits[v % base];
                v /= base;
            } while (v);
            if (alt && base == 16) {
                emit(&o, '0');
                emit(&o, 'x');
                width = width > 2 ? width - 2 : 0;
            }
        }
        emit_field(&o, p, num + sizeof(num) - p, width, left, pad);
    }
    if (size) {
        buf[o.len < size ? o.len : size - 1] = '\0';
    }
    return o.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

void vprint_line(const char *prefix, const char *fmt, va_list ap)
{
    char msg[256];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    printf("%s%s\n", prefix, msg);
}

int printf(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    for (const char *p = buf; *p; p++) {
        putchar_serial(*p);
    }
    return n;
}
