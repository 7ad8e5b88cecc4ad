/*
 * lumbar_ref open GATT profile: packet encoder and control-point parser.
 *
 * Plain C99, no allocation, no board dependencies: the same file builds into the board
 * firmware (nRF52840 / ESP32 sketches) and, on a host, into a shared library the Python
 * tests load to check bit-exact agreement with the decoder in lumbar_sensors.lumbar_ref.
 * The byte layout is specified in firmware_interface/README.md.
 */
#ifndef LUMBAR_REF_PROTOCOL_H
#define LUMBAR_REF_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LR_VERSION 1u
#define LR_HEADER_LEN 16u
#define LR_SAMPLE_LEN 12u
#define LR_MAX_SAMPLES 40u
#define LR_MIN_PERIOD_US 100u
#define LR_MAX_PERIOD_US 40000u
#define LR_N_ACC_RANGES 4u  /* codes 0..3: +-2, 4, 8, 16 g */
#define LR_N_GYRO_RANGES 5u /* codes 0..4: +-125, 250, 500, 1000, 2000 dps */
#define LR_STATUS_FIFO_OVERFLOW 0x01u

/* 128-bit UUIDs, as strings for BLE stacks that take them */
#define LR_SERVICE_UUID "4c550001-6d62-6172-7265-662d70726f31"
#define LR_CONTROL_POINT_UUID "4c550002-6d62-6172-7265-662d70726f31"
#define LR_DATA_UUID "4c550003-6d62-6172-7265-662d70726f31"

/* control-point op codes */
enum lr_op {
    LR_OP_SET_RATE = 1,   /* u16 rate_hz */
    LR_OP_SET_RANGE = 2,  /* u8 acc code, u8 gyro code */
    LR_OP_START = 3,      /* u8 max samples per packet (0 = as many as the MTU allows) */
    LR_OP_STOP = 4,       /* - */
    LR_OP_TIME_SYNC = 5,  /* u64 host time, us */
    LR_OP_GET_CONFIG = 6  /* - */
};

/* response status codes */
enum lr_status {
    LR_OK = 0,
    LR_ERR_UNKNOWN_OP = 1,
    LR_ERR_LENGTH = 2,
    LR_ERR_VALUE = 3,
    LR_ERR_BUSY = 4
};

/* A parsed control-point command. */
typedef struct {
    uint8_t op;
    uint16_t rate_hz;
    uint8_t acc_code;
    uint8_t gyro_code;
    uint8_t max_samples;
    uint64_t host_time_us;
} lr_command;

/* One packet header (the samples follow as int16 ax ay az gx gy gz). */
typedef struct {
    uint8_t n_samples;
    uint8_t acc_code;
    uint8_t gyro_code;
    uint8_t status;
    uint32_t seq;        /* index of the first sample since START */
    uint64_t t_first_us; /* device time of the first sample (48 bits kept) */
    uint16_t period_us;  /* nominal sample period */
} lr_header;

/* Is rate_hz one of the supported output rates (25, 50, 100, 200, 400, 800, 1600)? */
int lr_rate_supported(uint16_t rate_hz);

/* Samples per notification that fit a negotiated ATT MTU (0 if none fit). */
size_t lr_max_samples_for_mtu(uint16_t att_mtu);

/*
 * Encode one data packet into out (capacity cap). samples holds n_samples x 6 int16.
 * Returns the packet length, or 0 if the header is invalid or out is too small.
 */
size_t lr_encode_packet(uint8_t *out, size_t cap, const lr_header *h, const int16_t *samples);

/* Parse a control-point write. Fills cmd (op always set when len > 0); returns an lr_status. */
int lr_parse_command(const uint8_t *in, size_t len, lr_command *cmd);

/*
 * Encode a response: 0x80|op, status, then for an OK TIME_SYNC the device time (u64 us),
 * for an OK GET_CONFIG u16 rate, acc code, gyro code, streaming flag.
 * Returns the length (0 if cap is too small).
 */
size_t lr_encode_response(uint8_t *out, size_t cap, uint8_t op, uint8_t status, uint64_t device_time_us,
                          uint16_t rate_hz, uint8_t acc_code, uint8_t gyro_code, uint8_t streaming);

#ifdef __cplusplus
}
#endif

#endif /* LUMBAR_REF_PROTOCOL_H */
