// Bilinear 2x upsampling as app/render/splat.py's _upsample_2x: fine pixel i reads coarse position
// i / 2 - 1/4 (3/4 of its own coarse pixel, 1/4 of the nearer neighbour), replicating the border.
vec4 upsampled(sampler2D coarse, ivec2 coarse_size, ivec2 fine_texel) {
    vec2 position = vec2(fine_texel) * 0.5 - 0.25;
    vec2 lower = floor(position);
    vec2 fraction = position - lower;
    ivec2 low = clamp(ivec2(lower), ivec2(0), coarse_size - 1);
    ivec2 high = clamp(ivec2(lower) + 1, ivec2(0), coarse_size - 1);
    vec4 top = mix(texelFetch(coarse, ivec2(low.x, low.y), 0), texelFetch(coarse, ivec2(high.x, low.y), 0), fraction.x);
    vec4 bottom = mix(texelFetch(coarse, ivec2(low.x, high.y), 0), texelFetch(coarse, ivec2(high.x, high.y), 0), fraction.x);
    return mix(top, bottom, fraction.y);
}
