/* lumbar_ref packet encoder and command parser; see lumbar_ref_protocol.h. */
#include "lumbar_ref_protocol.h"

static const uint16_t k_rates[] = {25, 50, 100, 200, 400, 800, 1600};

/* explicit little-endian stores: the byte order must not depend on the CPU */
static void put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u48(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 6; ++i) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

int lr_rate_supported(uint16_t rate_hz) {
    for (size_t i = 0; i < sizeof k_rates / sizeof k_rates[0]; ++i)
        if (k_rates[i] == rate_hz) return 1;
    return 0;
}

size_t lr_max_samples_for_mtu(uint16_t att_mtu) {
    if (att_mtu < 3u + LR_HEADER_LEN + LR_SAMPLE_LEN) return 0;
    size_t n = (size_t)(att_mtu - 3u - LR_HEADER_LEN) / LR_SAMPLE_LEN;
    return n > LR_MAX_SAMPLES ? LR_MAX_SAMPLES : n;
}

size_t lr_encode_packet(uint8_t *out, size_t cap, const lr_header *h, const int16_t *samples) {
    if (h->n_samples < 1 || h->n_samples > LR_MAX_SAMPLES) return 0;
    if (h->acc_code >= LR_N_ACC_RANGES || h->gyro_code >= LR_N_GYRO_RANGES) return 0;
    if (h->period_us < LR_MIN_PERIOD_US || h->period_us > LR_MAX_PERIOD_US) return 0;
    if (h->status & (uint8_t)~LR_STATUS_FIFO_OVERFLOW) return 0;
    size_t len = LR_HEADER_LEN + (size_t)h->n_samples * LR_SAMPLE_LEN;
    if (cap < len) return 0;
    out[0] = (uint8_t)LR_VERSION;
    out[1] = h->n_samples;
    out[2] = (uint8_t)(h->acc_code | (h->gyro_code << 4));
    out[3] = h->status;
    put_u32(out + 4, h->seq);
    put_u48(out + 8, h->t_first_us);
    put_u16(out + 14, h->period_us);
    uint8_t *p = out + LR_HEADER_LEN;
    for (size_t i = 0; i < (size_t)h->n_samples * 6u; ++i, p += 2) put_u16(p, (uint16_t)samples[i]);
    return len;
}

int lr_parse_command(const uint8_t *in, size_t len, lr_command *cmd) {
    cmd->op = 0;
    cmd->rate_hz = 0;
    cmd->acc_code = 0;
    cmd->gyro_code = 0;
    cmd->max_samples = 0;
    cmd->host_time_us = 0;
    if (len == 0) return LR_ERR_LENGTH;
    cmd->op = in[0];
    size_t want;
    switch (in[0]) {
    case LR_OP_SET_RATE: want = 3; break;
    case LR_OP_SET_RANGE: want = 3; break;
    case LR_OP_START: want = 2; break;
    case LR_OP_STOP: want = 1; break;
    case LR_OP_TIME_SYNC: want = 9; break;
    case LR_OP_GET_CONFIG: want = 1; break;
    default: return LR_ERR_UNKNOWN_OP;
    }
    if (len != want) return LR_ERR_LENGTH;
    switch (in[0]) {
    case LR_OP_SET_RATE:
        cmd->rate_hz = (uint16_t)get_le(in + 1, 2);
        return lr_rate_supported(cmd->rate_hz) ? LR_OK : LR_ERR_VALUE;
    case LR_OP_SET_RANGE:
        cmd->acc_code = in[1];
        cmd->gyro_code = in[2];
        return (in[1] < LR_N_ACC_RANGES && in[2] < LR_N_GYRO_RANGES) ? LR_OK : LR_ERR_VALUE;
    case LR_OP_START:
        cmd->max_samples = in[1];
        return in[1] <= LR_MAX_SAMPLES ? LR_OK : LR_ERR_VALUE;
    case LR_OP_TIME_SYNC:
        cmd->host_time_us = get_le(in + 1, 8);
        return LR_OK;
    default:
        return LR_OK;
    }
}

size_t lr_encode_response(uint8_t *out, size_t cap, uint8_t op, uint8_t status, uint64_t device_time_us,
                          uint16_t rate_hz, uint8_t acc_code, uint8_t gyro_code, uint8_t streaming) {
    size_t len = 2;
    if (status == LR_OK && op == LR_OP_TIME_SYNC) len = 10;
    if (status == LR_OK && op == LR_OP_GET_CONFIG) len = 7;
    if (cap < len) return 0;
    out[0] = (uint8_t)(0x80u | (op & 0x7Fu));
    out[1] = status;
    if (len == 10) {
        for (int i = 0; i < 8; ++i) out[2 + i] = (uint8_t)(device_time_us >> (8 * i));
    } else if (len == 7) {
        put_u16(out + 2, rate_hz);
        out[4] = acc_code;
        out[5] = gyro_code;
        out[6] = streaming;
    }
    return len;
}
