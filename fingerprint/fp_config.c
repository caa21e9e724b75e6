/*
 * fp_config.c -- the parameter set, its validation and its digest.
 * The reasons for each default value are in docs/fingerprint.md.
 */
#include "fp_internal.h"

#include <string.h>

void fp_config_default(fp_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->version = FP_PARAMS_VERSION;
    cfg->sample_rate = 11025;
    cfg->fft_size = 1024;
    cfg->hop = 256;
    cfg->min_bin = 9;     /* ~97 Hz */
    cfg->max_bin = 464;   /* ~5 kHz */
    cfg->peak_df = 3;
    cfg->peak_dt = 2;
    cfg->contrast_bins = 24;
    cfg->min_contrast_db = 3.0f;
    cfg->tilt_db_per_octave = 1.5f;
    cfg->floor_db = -95.0f;
    cfg->density = 15;
    cfg->density_window = 43;  /* ~1 s */
    cfg->fanout = 7;
    cfg->target_dt_min = 1;
    cfg->target_dt_max = 63;
    cfg->target_df = 63;
    cfg->triplet_targets = 4;
    cfg->triplet_dl = 12;
    cfg->repeat_frames = 43;
}

void fp_limits_default(fp_limits_t *lim)
{
    lim->max_duration_s = 4.0 * 3600.0;
    lim->max_channels = 16;
    lim->max_sample_rate = 384000;
    lim->max_hashes_per_s = 2000;
}

fp_err_t fp_config_check(const fp_config_t *c, char *err, size_t errlen)
{
#define BAD(...) return fpi_error(FP_ERR_INVALID, err, errlen, __VA_ARGS__)
    if (!c) BAD("no configuration given");
    if (c->version != FP_PARAMS_VERSION)
        BAD("parameter version %d is not supported (this build: %d)",
            c->version, FP_PARAMS_VERSION);
    if (c->sample_rate < 4000 || c->sample_rate > 48000)
        BAD("sample_rate %d out of range 4000..48000", c->sample_rate);
    if (c->fft_size < 64 || c->fft_size > 8192 || (c->fft_size & (c->fft_size - 1)))
        BAD("fft_size %d must be a power of two in 64..8192", c->fft_size);
    if (c->hop < 1 || c->hop > c->fft_size) BAD("hop %d out of range 1..fft_size", c->hop);
    if (c->min_bin < 1 || c->max_bin >= c->fft_size / 2 || c->min_bin >= c->max_bin)
        BAD("bins %d..%d out of range 1..%d", c->min_bin, c->max_bin, c->fft_size / 2 - 1);
    if (c->max_bin > 511) BAD("max_bin %d does not fit the 9-bit hash field", c->max_bin);
    if (c->peak_df < 1 || c->peak_df > 64 || c->peak_dt < 1 || c->peak_dt > 64)
        BAD("peak neighbourhood %d x %d out of range 1..64", c->peak_df, c->peak_dt);
    if (c->contrast_bins < 1 || c->contrast_bins > 256) BAD("contrast_bins out of range 1..256");
    if (!(c->tilt_db_per_octave >= -12.0f && c->tilt_db_per_octave <= 12.0f))
        BAD("tilt_db_per_octave out of range -12..12");
    if (c->density < 1 || c->density > 1000) BAD("density out of range 1..1000");
    if (c->density_window < 1 || c->density_window > 1024) BAD("density_window out of range 1..1024");
    if (c->fanout < 1 || c->fanout > 32) BAD("fanout out of range 1..32");
    if (c->target_dt_min < 1 || c->target_dt_max > 64 || c->target_dt_min > c->target_dt_max)
        BAD("target zone %d..%d frames out of range 1..64", c->target_dt_min, c->target_dt_max);
    if (c->target_df < 1 || c->target_df > 63) BAD("target_df out of range 1..63");
    if (c->triplet_targets < 0 || c->triplet_targets > 8) BAD("triplet_targets out of range 0..8");
    if (c->triplet_dl < 1 || c->triplet_dl > 12) BAD("triplet_dl out of range 1..12");
    if (c->repeat_frames < 0 || c->repeat_frames > 4096) BAD("repeat_frames out of range 0..4096");
    return FP_OK;
#undef BAD
}

/* FNV-1a over the parameter values, field by field (no padding bytes). */
static uint32_t fnv(uint32_t h, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        h ^= (v >> (8 * i)) & 0xffu;
        h *= 16777619u;
    }
    return h;
}

uint32_t fp_config_id(const fp_config_t *c)
{
    uint32_t h = 2166136261u;
    int32_t ints[] = {c->version, c->sample_rate, c->fft_size, c->hop, c->min_bin,
                      c->max_bin, c->peak_df, c->peak_dt, c->contrast_bins,
                      c->density, c->density_window, c->fanout, c->target_dt_min,
                      c->target_dt_max, c->target_df, c->triplet_targets, c->triplet_dl, c->repeat_frames};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) h = fnv(h, (uint32_t)ints[i]);
    /* floats by value in hundredths, so the id does not hang on bit patterns */
    h = fnv(h, (uint32_t)(int32_t)(c->min_contrast_db * 100.0f));
    h = fnv(h, (uint32_t)(int32_t)(c->tilt_db_per_octave * 100.0f));
    h = fnv(h, (uint32_t)(int32_t)(c->floor_db * 100.0f));
    return h;
}

double fp_config_frame_seconds(const fp_config_t *cfg)
{
    return (double)cfg->hop / (double)cfg->sample_rate;
}
