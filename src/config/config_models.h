/*
 * config_models.h — what the configuration knows of the models, all of it
 * from the registry (nn/models.h): the help and notes that name every model, built at run time so that a
 * model added to the registry is listed without touching the key table.
 */
#ifndef CTSWEEP_CONFIG_CONFIG_MODELS_H
#define CTSWEEP_CONFIG_CONFIG_MODELS_H

// "Backbones: vgg16, vgg19, resnet34." — the help of grid.model.
const char *config_models_help(void);
// "per model: vgg16, vgg19 [512, 256, 128]; resnet34 [256, 128]" — the
// default of head.hidden, models with the same head named together.
const char *config_head_hidden_note(void);
// "per model: vgg16, vgg19 0.5; resnet34 0" — the default of head.dropout.
const char *config_head_dropout_note(void);

typedef struct ConfigCtx ConfigCtx;
// grid.unfreeze against every grid model's stage count, and the head
// settings that need a frozen backbone. 0, or -1 through config_fail.
int config_check_unfreeze(ConfigCtx *c);

#endif
