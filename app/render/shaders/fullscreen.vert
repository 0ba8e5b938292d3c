#version 330 core
// One triangle that covers the viewport; uv runs over [0, 1]^2 of the image, row 0 at uv.y = 0.
uniform bool flip_y;  // true when drawing to a screen (image row 0 at the top)
out vec2 uv;

void main() {
    vec2 corner = vec2(float((gl_VertexID & 1) << 2) - 1.0, float((gl_VertexID & 2) << 1) - 1.0);
    uv = (corner + 1.0) * 0.5;
    if (flip_y) uv.y = 1.0 - uv.y;
    gl_Position = vec4(corner, 1.0, 1.0);  // at the far plane: anything in the mesh draws over it
}
