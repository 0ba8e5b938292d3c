#version 330 core
// Grid mesh warp: each vertex moves by its own spectral displacement; larger motion lies in front.
#include "spectral.glsl"

uniform vec2 image_size;  // (W, H) pixels
uniform bool flip_y;      // true when drawing to a screen (image row 0 at the top)
uniform bool use_flow;    // add the flow layer's displacement of this pass
uniform sampler2D flow_field;  // RG32F (W, H): that displacement in pixels, x then y

in vec2 position;         // pixel units: (0, 0) is the image's top-left corner, pixel centres at i + 0.5
out vec2 texcoord;

void main() {
    ivec2 texel = clamp(ivec2(floor(position)), ivec2(0), ivec2(image_size) - 1);
    vec2 displacement = spectral_displacement(texel);
    if (use_flow) displacement += texelFetch(flow_field, texel, 0).xy;
    vec2 moved = position + displacement;
    float motion_squared = dot(displacement, displacement);
    // depth = -|F|^2 squeezed monotonically into the NDC range (-1, 1]: still pixels at the far plane.
    float depth = 1.0 - 2.0 * motion_squared / (motion_squared + 1.0);
    vec2 ndc = moved / image_size * 2.0 - 1.0;
    if (flip_y) ndc.y = -ndc.y;
    gl_Position = vec4(ndc, depth, 1.0);
    texcoord = position / image_size;
}
