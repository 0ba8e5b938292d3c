#version 330 core
// Pass 2: one 2x2-pixel point per source pixel, centred on the corner shared by its 4 bilinear
// taps, so it covers exactly those 4 target pixels; the fragment shader weighs each tap.
uniform sampler2D flow;        // RG32F (W, H) pixels
uniform sampler2D image;       // RGB (W, H)
uniform sampler2D importance;  // R32F (W, H): alpha * W(p)
uniform float largest_importance;
uniform ivec2 image_size;

const float MARGIN = 2.0;                 // as app/render/splat.py: targets clamp into [-2, size]
const float SOFTMAX_MIN_EXPONENT = -50.0; // as app/render/splat.py

flat out vec4 carried;    // (rgb * weight, weight)
flat out vec2 top_left;   // the top-left tap, in pixels
flat out vec2 fraction;   // where the target lies between the taps

void main() {
    ivec2 source = ivec2(gl_VertexID % image_size.x, gl_VertexID / image_size.x);
    vec2 target = vec2(source) + texelFetch(flow, source, 0).xy;
    bool finite = !(any(isnan(target)) || any(isinf(target)));
    target = clamp(target, vec2(-MARGIN), vec2(image_size));
    top_left = floor(target);
    fraction = target - top_left;

    float exponent = max(texelFetch(importance, source, 0).r - largest_importance, SOFTMAX_MIN_EXPONENT);
    float weight = exp(exponent);
    carried = vec4(texelFetch(image, source, 0).rgb * weight, weight);

    // The point's centre is the corner top_left + 1 (window units); taps off-screen are clipped,
    // and a point whose 4 taps are all off-screen has its centre outside the clip volume.
    vec2 ndc = (top_left + 1.0) / vec2(image_size) * 2.0 - 1.0;
    gl_Position = finite ? vec4(ndc, 0.0, 1.0) : vec4(2.0, 2.0, 0.0, 1.0);  // (2, 2) is clipped away
    gl_PointSize = 2.0;
}
