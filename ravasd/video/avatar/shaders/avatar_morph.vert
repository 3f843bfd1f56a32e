#version 330
// GPU variant: morph targets are applied here (deltas in a float texture, weights as uniforms).
// Used when a real GPU renders; on llvmpipe the CPU path is faster.
uniform mat4 u_mvp;
uniform mat4 u_model;
uniform sampler2D u_deltas;  // texel (t * u_vertices + vertex_id) wrapped at 4096 columns: xyz delta
uniform float u_weights[128];
uniform int u_targets;
uniform int u_vertices;
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
    vec3 p = in_pos;
    for (int t = 0; t < u_targets; ++t) {
        float w = u_weights[t];
        if (w != 0.0) {
            int idx = t * u_vertices + gl_VertexID;
            p += w * texelFetch(u_deltas, ivec2(idx % 4096, idx / 4096), 0).xyz;
        }
    }
    vec4 world = u_model * vec4(p, 1.0);
    v_world = world.xyz;
    v_nrm = mat3(u_model) * in_nrm;
    v_uv = in_uv;
    v_color = in_color;
    v_shade = in_shade;
    gl_Position = u_mvp * vec4(p, 1.0);
}
