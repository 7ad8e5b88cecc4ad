/*
 * lumbar_ref reference firmware for DIY boards (Arduino core + ArduinoBLE).
 *
 * Boards: Seeed XIAO nRF52840 Sense (LSM6DS3TR-C), Arduino Nano 33 BLE Sense Rev2 (BMI270),
 * ESP32-S3 with an ICM-42688 or BMI270 (ArduinoBLE works on ESP32 cores too).
 * Build: copy ../lumbar_ref_protocol.c and ../lumbar_ref_protocol.h into a src/ folder next
 * to this sketch (Arduino compiles only the sketch folder), pick the IMU below, upload.
 *
 * Status: the protocol code is tested on the host (tests/firmware_interface); this sketch is
 * a starting point that has not been run on hardware yet. The IMU driver functions are the
 * only board-specific part: imu_begin(), imu_configure(), imu_read().
 */
#include <ArduinoBLE.h>

#include "src/lumbar_ref_protocol.h"

/* ---- choose the IMU driver ------------------------------------------------------------- */
#define LR_IMU_LSM6DS3 1 /* XIAO nRF52840 Sense: Seeed "LSM6DS3" library */
/* #define LR_IMU_BMI270 1    Nano 33 BLE Sense Rev2: "Arduino_BMI270_BMM150" library */

#if defined(LR_IMU_LSM6DS3)
#include <LSM6DS3.h>
static LSM6DS3 imu(I2C_MODE, 0x6A);
#endif

static const float k_acc_g[LR_N_ACC_RANGES] = {2, 4, 8, 16};
static const float k_gyro_dps[LR_N_GYRO_RANGES] = {125, 250, 500, 1000, 2000};

/* ---- GATT ------------------------------------------------------------------------------- */
static BLEService lr_service(LR_SERVICE_UUID);
static BLECharacteristic lr_control(LR_CONTROL_POINT_UUID, BLEWrite | BLENotify, 16);
static BLECharacteristic lr_data(LR_DATA_UUID, BLENotify, LR_HEADER_LEN + LR_MAX_SAMPLES * LR_SAMPLE_LEN);
static BLEService battery_service("180F");
static BLEUnsignedCharCharacteristic battery_level("2A19", BLERead | BLENotify);
static BLEService device_info("180A");
static BLEStringCharacteristic manufacturer("2A29", BLERead, 20);
static BLEStringCharacteristic firmware_rev("2A26", BLERead, 20);

/* ---- state ------------------------------------------------------------------------------ */
static uint16_t g_rate_hz = 200;
static uint8_t g_acc_code = 2, g_gyro_code = 4;
static uint8_t g_max_samples = 0;
static bool g_streaming = false;
static uint32_t g_seq = 0;
static uint8_t g_status = 0;
static int16_t g_buf[LR_MAX_SAMPLES * 6];
static size_t g_n = 0;
static uint64_t g_t_first_us = 0;
static uint64_t g_next_sample_us = 0;
static uint32_t g_last_micros = 0;
static uint64_t g_micros_hi = 0;

/* 64-bit microsecond clock from the 32-bit micros() (call often: wraps every 71 min) */
static uint64_t now_us(void) {
    uint32_t m = micros();
    if (m < g_last_micros) g_micros_hi += (uint64_t)1 << 32;
    g_last_micros = m;
    return g_micros_hi | m;
}

static int16_t to_counts(float v, float full_scale) {
    float c = v / full_scale * 32768.0f;
    if (c > 32767.0f) c = 32767.0f; /* saturate so the host sees the clip */
    if (c < -32768.0f) c = -32768.0f;
    return (int16_t)c;
}

static bool imu_begin(void) {
#if defined(LR_IMU_LSM6DS3)
    return imu.begin() == 0;
#else
    return false;
#endif
}

static void imu_configure(void) {
#if defined(LR_IMU_LSM6DS3)
    /* LSM6DS3 supports 2/4/8/16 g and 125..2000 dps: same codes as the profile */
    imu.settings.accelRange = (uint16_t)k_acc_g[g_acc_code];
    imu.settings.gyroRange = (uint16_t)k_gyro_dps[g_gyro_code];
    imu.settings.accelSampleRate = g_rate_hz > 1660 ? 1660 : g_rate_hz;
    imu.settings.gyroSampleRate = g_rate_hz > 1660 ? 1660 : g_rate_hz;
    imu.begin();
#endif
}

/* one sample: acc in g, gyro in dps */
static void imu_read(float acc[3], float gyro[3]) {
#if defined(LR_IMU_LSM6DS3)
    acc[0] = imu.readFloatAccelX(); acc[1] = imu.readFloatAccelY(); acc[2] = imu.readFloatAccelZ();
    gyro[0] = imu.readFloatGyroX(); gyro[1] = imu.readFloatGyroY(); gyro[2] = imu.readFloatGyroZ();
#else
    for (int i = 0; i < 3; ++i) acc[i] = gyro[i] = 0.0f;
#endif
}

static void respond(uint8_t op, uint8_t status, uint64_t device_us) {
    uint8_t out[16];
    size_t n = lr_encode_response(out, sizeof out, op, status, device_us, g_rate_hz, g_acc_code, g_gyro_code,
                                  g_streaming ? 1 : 0);
    if (n) lr_control.writeValue(out, n);
}

static void on_control(BLEDevice, BLECharacteristic ch) {
    uint64_t t_rx = now_us(); /* timestamp first: TIME_SYNC wants the receipt time */
    lr_command cmd;
    int st = lr_parse_command(ch.value(), ch.valueLength(), &cmd);
    if (st == LR_OK) {
        switch (cmd.op) {
        case LR_OP_SET_RATE:
            if (g_streaming) st = LR_ERR_BUSY; else { g_rate_hz = cmd.rate_hz; imu_configure(); }
            break;
        case LR_OP_SET_RANGE:
            if (g_streaming) st = LR_ERR_BUSY;
            else { g_acc_code = cmd.acc_code; g_gyro_code = cmd.gyro_code; imu_configure(); }
            break;
        case LR_OP_START:
            g_max_samples = cmd.max_samples;
            g_seq = 0; g_n = 0; g_status = 0;
            g_next_sample_us = now_us();
            g_streaming = true;
            break;
        case LR_OP_STOP:
            g_streaming = false;
            break;
        default:
            break; /* TIME_SYNC and GET_CONFIG only answer */
        }
    }
    respond(cmd.op, (uint8_t)st, t_rx);
}

static size_t samples_per_packet(void) {
    /* ArduinoBLE does not expose the negotiated MTU on every core; 247 is the common value */
    size_t n = lr_max_samples_for_mtu(247);
    if (g_max_samples && g_max_samples < n) n = g_max_samples;
    return n ? n : 1;
}

static void flush_packet(void) {
    uint8_t pkt[LR_HEADER_LEN + LR_MAX_SAMPLES * LR_SAMPLE_LEN];
    lr_header h;
    h.n_samples = (uint8_t)g_n;
    h.acc_code = g_acc_code;
    h.gyro_code = g_gyro_code;
    h.status = g_status;
    h.seq = g_seq;
    h.t_first_us = g_t_first_us;
    h.period_us = (uint16_t)(1000000u / g_rate_hz);
    size_t len = lr_encode_packet(pkt, sizeof pkt, &h, g_buf);
    if (len && !lr_data.writeValue(pkt, len)) g_status |= LR_STATUS_FIFO_OVERFLOW; /* dropped: tell the host */
    else g_status = 0;
    g_seq += (uint32_t)g_n; /* sequence counts samples, so a dropped packet shows as a jump */
    g_n = 0;
}

void setup(void) {
    if (!imu_begin()) { while (1) delay(1000); }
    imu_configure();
    if (!BLE.begin()) { while (1) delay(1000); }
    BLE.setLocalName("LumbarRef");
    BLE.setAdvertisedService(lr_service);
    lr_service.addCharacteristic(lr_control);
    lr_service.addCharacteristic(lr_data);
    BLE.addService(lr_service);
    battery_service.addCharacteristic(battery_level);
    BLE.addService(battery_service);
    device_info.addCharacteristic(manufacturer);
    device_info.addCharacteristic(firmware_rev);
    BLE.addService(device_info);
    manufacturer.writeValue("lumbar DIY");
    firmware_rev.writeValue("lumbar_ref 1");
    battery_level.writeValue(100);
    lr_control.setEventHandler(BLEWritten, on_control);
    BLE.advertise();
}

void loop(void) {
    BLE.poll();
    if (!BLE.connected()) { g_streaming = false; return; }
    if (!g_streaming) return;
    uint64_t t = now_us();
    if (t < g_next_sample_us) return;
    /* timestamps follow the nominal grid; a real driver would read the IMU FIFO instead */
    float acc[3], gyro[3];
    imu_read(acc, gyro);
    if (g_n == 0) g_t_first_us = g_next_sample_us;
    int16_t *s = g_buf + 6 * g_n;
    for (int i = 0; i < 3; ++i) {
        s[i] = to_counts(acc[i], k_acc_g[g_acc_code]);
        s[3 + i] = to_counts(gyro[i], k_gyro_dps[g_gyro_code]);
    }
    ++g_n;
    g_next_sample_us += 1000000u / g_rate_hz;
    if (g_n >= samples_per_packet()) flush_packet();
}
