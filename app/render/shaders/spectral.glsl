// Displacement from the spectral volume: F(p) = Re sum_k S_k(p) w_k.
// Included by the vertex/fragment shaders that need it; gl.py sets NUM_BANDS to the motion's K.
#define NUM_BANDS 16

// K layers, one per band; each texel holds (Re S_x, Im S_x, Re S_y, Im S_y) of that band.
uniform sampler2DArray spectrum;
// The per-band complex factors w_k = (Re, Im) of this frame: the only per-frame upload.
uniform vec2 band_factors[NUM_BANDS];

vec2 spectral_displacement(ivec2 texel) {
    vec2 displacement = vec2(0.0);
    for (int band = 0; band < NUM_BANDS; ++band) {
        vec4 s = texelFetch(spectrum, ivec3(texel, band), 0);
        vec2 w = band_factors[band];
        // Re((a + ib)(c + id)) = ac - bd, for x and for y
        displacement += vec2(s.x * w.x - s.y * w.y, s.z * w.x - s.w * w.y);
    }
    return displacement;
}
