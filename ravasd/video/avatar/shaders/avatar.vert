#version 330
// Positions arrive already morphed and skinned (CPU: faster than the shader on llvmpipe).
uniform mat4 u_mvp;
uniform mat4 u_model;
in vec3 in_pos;
in vec3 in_nrm;
in vec2 in_uv;
in vec4 in_color;  // per-vertex colour (batched parts); white otherwise
in vec3 in_shade;  // per-vertex MToon shade colour (batched parts carry each part's)
out vec3 v_nrm;
out vec3 v_world;
out vec2 v_uv;
out vec4 v_color;
out vec3 v_shade;
void main() {
    vec4 world = u_model * vec4(in_pos, 1.0);
    v_world = world.xyz;
    v_nrm = mat3(u_model) * in_nrm;
    v_uv = in_uv;
    v_color = in_color;
    v_shade = in_shade;
    gl_Position = u_mvp * vec4(in_pos, 1.0);
}
