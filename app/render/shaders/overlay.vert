#version 330
// The viewport overlay: one triangle covering the image rectangle, texture row 0 (the top row) at the top.
out vec2 uv;
void main() {
    vec2 corner = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));  // (0,0) (2,0) (0,2)
    uv = vec2(corner.x, 1.0 - corner.y);  // texture row 0 (the image's top row) at the top
    gl_Position = vec4(corner * 2.0 - 1.0, 0.0, 1.0);
}
