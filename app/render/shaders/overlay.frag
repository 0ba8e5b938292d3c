#version 330
// The viewport overlay: the RGBA picture as it is (blended over the frame by the caller).
uniform sampler2D overlay;
in vec2 uv;
out vec4 colour;
void main() {
    colour = texture(overlay, uv);
}
